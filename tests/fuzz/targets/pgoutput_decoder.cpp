// pgoutput messages (funcd::pgoutput::Decoder), as a replication stream carries them: the
// input is a sequence of messages, each preceded by its length (2 bytes, big-endian), all
// decoded by one decoder so that Relation messages feed the row messages after them.
//
// Invariants:
// - a message is decoded or refused with an error that says why (never empty);
// - a decoded row's images are JSON objects (or null where the operation has none), its
//   table is a relation the stream described, and everything decoded serialises as JSON
//   (strings are valid UTF-8);
// - decoding is deterministic: a second decoder fed the same messages gives the same results.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "../fuzz_check.hpp"
#include "funcd/event_sources/pgoutput_decoder.hpp"

namespace {

using namespace funcd::pgoutput;

// A decoded message written out, to compare two runs and to prove it serialises.
std::string describe(const DecodeResult& r) {
    if (!r.ok()) return "error:" + r.error();
    const Message& m = r.message();
    if (const auto* row = std::get_if<RowMessage>(&m)) {
        FUZZ_CHECK(row->keys.is_object(), "keys are not an object");
        FUZZ_CHECK(row->new_image.is_object() || (row->operation == funcd::RowOperation::remove && row->new_image.is_null()),
                   "bad new image: " + row->new_image.dump());
        FUZZ_CHECK(row->old_image.is_object() || row->old_image.is_null(), "bad old image");
        return "row:" + row->table + row->keys.dump() + row->new_image.dump() + row->old_image.dump();
    }
    if (const auto* rel = std::get_if<RelationMessage>(&m)) return "relation:" + std::to_string(rel->relation_id);
    if (const auto* b = std::get_if<Begin>(&m)) return "begin:" + std::to_string(b->final_lsn);
    if (const auto* c = std::get_if<Commit>(&m)) return "commit:" + std::to_string(c->end_lsn);
    if (const auto* t = std::get_if<Truncate>(&m)) return "truncate:" + nlohmann::json(t->tables).dump();
    if (const auto* o = std::get_if<Origin>(&m)) return "origin:" + nlohmann::json(o->name).dump();
    if (const auto* y = std::get_if<TypeMessage>(&m)) return "type:" + nlohmann::json(y->schema + y->name).dump();
    if (const auto* lm = std::get_if<LogicalMessage>(&m)) return "message:" + std::to_string(lm->content.size());
    return "?";
}

std::string run(std::string_view input) {
    Decoder d;
    std::string out;
    while (input.size() >= 2) {
        const std::size_t len = (static_cast<unsigned char>(input[0]) << 8) | static_cast<unsigned char>(input[1]);
        input.remove_prefix(2);
        const std::string_view message = input.substr(0, len);
        input.remove_prefix(message.size());
        const auto r = d.decode(message);
        FUZZ_CHECK(r.ok() || !r.error().empty(), "refused without an error");
        if (r.ok()) {
            if (const auto* row = std::get_if<RowMessage>(&r.message()))
                FUZZ_CHECK(d.relation(row->relation_id) && d.relation(row->relation_id)->qualified_name() == row->table,
                           "a row of a relation the stream did not describe");
        }
        out += describe(r);
        out += '\n';
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const std::string first = run(input);
    FUZZ_CHECK(first == run(input), "two decoders disagree");
    return 0;
}
