#include "funcd/event_sources/pgoutput_decoder.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "funcd/common/base64.hpp"
#include "funcd/common/utf8.hpp"

namespace funcd::pgoutput {
namespace {

// Seconds from the Unix epoch to PostgreSQL's, 2000-01-01 00:00:00 UTC.
constexpr std::int64_t kPostgresEpochUnixSeconds = 946'684'800;

// Text as a JSON string: PostgreSQL sends a UTF8 database's text as valid UTF-8, but a
// SQL_ASCII database's bytes unchecked, and JSON (and nlohmann's dump) needs UTF-8: each
// byte that starts no valid sequence becomes U+FFFD.
std::string json_text(std::string_view s) {
    if (is_valid_utf8(s)) return std::string(s);
    std::string out;
    out.reserve(s.size() + 8);
    for (std::size_t i = 0; i < s.size();) {
        if (const std::size_t n = utf8_sequence_length(s, i); n > 0) {
            out.append(s.substr(i, n));
            i += n;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    return out;
}

// Reads big-endian fields (the protocol's network byte order) from one message, never past
// its end. A failed read leaves `failed` set with what was being read; later reads fail too.
class Reader {
public:
    explicit Reader(std::string_view bytes) : in_(bytes) {}

    bool failed() const { return !error_.empty(); }
    const std::string& error() const { return error_; }
    std::size_t left() const { return in_.size() - pos_; }

    std::uint64_t uint(std::size_t bytes, std::string_view what) {
        if (failed()) return 0;
        if (left() < bytes) {
            fail(fmt::format("the message ends before {} ({} bytes needed, {} left)", what, bytes, left()));
            return 0;
        }
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(in_[pos_ + i]);
        pos_ += bytes;
        return v;
    }
    std::uint8_t u8(std::string_view what) { return static_cast<std::uint8_t>(uint(1, what)); }
    std::uint16_t u16(std::string_view what) { return static_cast<std::uint16_t>(uint(2, what)); }
    std::uint32_t u32(std::string_view what) { return static_cast<std::uint32_t>(uint(4, what)); }
    std::uint64_t u64(std::string_view what) { return uint(8, what); }
    std::int64_t i64(std::string_view what) { return static_cast<std::int64_t>(u64(what)); }

    // A NUL-terminated string (the protocol's String).
    std::string cstring(std::string_view what) {
        if (failed()) return {};
        const auto end = in_.find('\0', pos_);
        if (end == std::string_view::npos) {
            fail(fmt::format("{} has no terminating NUL byte", what));
            return {};
        }
        std::string s = json_text(in_.substr(pos_, end - pos_));
        pos_ = end + 1;
        return s;
    }

    std::string_view bytes(std::size_t n, std::string_view what) {
        if (failed()) return {};
        if (left() < n) {
            fail(fmt::format("{} claims {} bytes but {} are left", what, n, left()));
            return {};
        }
        const auto s = in_.substr(pos_, n);
        pos_ += n;
        return s;
    }

    void fail(std::string error) {
        if (error_.empty()) error_ = std::move(error);
    }

private:
    std::string_view in_;
    std::size_t pos_ = 0;
    std::string error_;
};

// One column of a TupleData: a value, SQL NULL, or an unchanged TOASTed value the server
// did not send.
struct ColumnValue {
    enum class Kind { text, null, unchanged } kind = Kind::null;
    std::string_view text;
};

std::vector<ColumnValue> read_tuple(Reader& r, const Relation& rel, std::string_view what) {
    const std::uint16_t n = r.u16(fmt::format("the column count of {}", what));
    if (r.failed()) return {};
    if (n != rel.columns.size()) {
        r.fail(fmt::format("{} has {} columns but relation {} ({}) has {}", what, n, rel.id, rel.qualified_name(),
                           rel.columns.size()));
        return {};
    }
    std::vector<ColumnValue> values(n);
    for (std::uint16_t i = 0; i < n && !r.failed(); ++i) {
        const char kind = static_cast<char>(r.u8(fmt::format("the kind of column {} of {}", i + 1, what)));
        if (r.failed()) break;
        switch (kind) {
        case 'n': values[i].kind = ColumnValue::Kind::null; break;
        case 'u': values[i].kind = ColumnValue::Kind::unchanged; break;
        case 't': {
            const std::uint32_t len = r.u32(fmt::format("the length of column {} of {}", i + 1, what));
            values[i].kind = ColumnValue::Kind::text;
            values[i].text = r.bytes(len, fmt::format("column {} of {}", i + 1, what));
            break;
        }
        case 'b':
            // Binary values come only with the `binary` option (protocol version 2 servers),
            // which is never asked for.
            r.fail(fmt::format("column {} of {} is in binary format, which was not asked for", i + 1, what));
            break;
        default:
            r.fail(fmt::format("column {} of {} has an unknown kind byte 0x{:02x}", i + 1, what,
                               static_cast<unsigned char>(kind)));
        }
    }
    return values;
}

// The columns of a tuple as an object; `keys_only` keeps just the replica identity columns.
// Unchanged TOASTed values are left out (see the header).
nlohmann::json image(const Relation& rel, const std::vector<ColumnValue>& values, bool keys_only) {
    nlohmann::json out = nlohmann::json::object();
    for (std::size_t i = 0; i < values.size(); ++i) {
        const Column& c = rel.columns[i];
        if (keys_only && !c.key) continue;
        switch (values[i].kind) {
        case ColumnValue::Kind::unchanged: break;
        case ColumnValue::Kind::null: out[c.name] = nullptr; break;
        case ColumnValue::Kind::text: out[c.name] = typed_value(c.type_oid, values[i].text); break;
        }
    }
    return out;
}

template <class Int>
std::optional<Int> parse_int(std::string_view text) {
    Int v{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return v;
}

std::optional<double> parse_double(std::string_view text) {
    double v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return v;
}

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (const char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// numeric: exact integers as integers; decimals as a double only when the double's JSON
// text is the same decimal (so a reader gets the value the database holds); else the text.
nlohmann::json numeric_value(std::string_view text) {
    std::string_view digits = text;
    const bool negative = !digits.empty() && digits.front() == '-';
    if (negative) digits.remove_prefix(1);
    const auto dot = digits.find('.');
    std::string_view whole = digits.substr(0, dot);
    std::string_view fraction = dot == std::string_view::npos ? std::string_view{} : digits.substr(dot + 1);
    if (!all_digits(whole) || (dot != std::string_view::npos && !all_digits(fraction))) return json_text(text);
    while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
    std::string canonical = std::string(negative ? "-" : "") + std::string(whole);
    if (fraction.empty()) {
        if (const auto v = parse_int<std::int64_t>(canonical)) return *v;
        if (const auto v = parse_int<std::uint64_t>(canonical)) return *v;
        return json_text(text);
    }
    canonical += '.';
    canonical += fraction;
    // Leading zeros of the whole part are never written by PostgreSQL; without them the
    // comparison below is exact.
    const auto v = parse_double(canonical);
    if (!v || !std::isfinite(*v)) return json_text(text);
    if (nlohmann::json(*v).dump() != canonical) return json_text(text);
    return *v;
}

nlohmann::json float_value(std::string_view text) {
    if (text == "NaN" || text == "Infinity" || text == "-Infinity") return json_text(text);
    if (const auto v = parse_double(text); v && std::isfinite(*v)) return *v;
    return json_text(text);
}

std::optional<std::string> bytea_base64(std::string_view text) {
    if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) return std::nullopt;
    std::string bytes;
    bytes.reserve((text.size() - 2) / 2);
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 2; i < text.size(); i += 2) {
        const int hi = nibble(text[i]), lo = nibble(text[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        bytes.push_back(static_cast<char>(hi * 16 + lo));
    }
    return base64_encode(bytes);
}

// Fixed-width unsigned digits at `pos`; false when they are not all there.
bool fixed_digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        out = out * 10 + (s[i] - '0');
    }
    return true;
}

// "YYYY-MM-DD HH:MM:SS[.ffffff]" at the start of `s`, as DateStyle=ISO writes it. `rest` is
// what follows (a zone for timestamptz). Years outside 4 digits, BC and infinities are not
// matched and stay text.
struct ParsedTimestamp {
    std::chrono::year_month_day date;
    int hour = 0, minute = 0, second = 0;
    std::string_view fraction;  // the digits, without the dot
    std::string_view rest;
};

std::optional<ParsedTimestamp> parse_timestamp(std::string_view s) {
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    if (!fixed_digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !fixed_digits(s, 5, 2, mo) || s[7] != '-' ||
        !fixed_digits(s, 8, 2, d) || s[10] != ' ' || !fixed_digits(s, 11, 2, h) || s[13] != ':' ||
        !fixed_digits(s, 14, 2, mi) || s[16] != ':' || !fixed_digits(s, 17, 2, sec))
        return std::nullopt;
    ParsedTimestamp t;
    t.date = std::chrono::year{y} / std::chrono::month{static_cast<unsigned>(mo)} / std::chrono::day{static_cast<unsigned>(d)};
    if (!t.date.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
    t.hour = h;
    t.minute = mi;
    t.second = sec;
    std::size_t pos = 19;
    if (pos < s.size() && s[pos] == '.') {
        std::size_t end = pos + 1;
        while (end < s.size() && s[end] >= '0' && s[end] <= '9') ++end;
        if (end == pos + 1 || end - pos - 1 > 6) return std::nullopt;
        t.fraction = s.substr(pos + 1, end - pos - 1);
        pos = end;
    }
    t.rest = s.substr(pos);
    return t;
}

std::string iso_timestamp(std::chrono::year_month_day date, int h, int mi, int sec, std::string_view fraction,
                          std::string_view suffix) {
    std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", static_cast<int>(date.year()),
                                  static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()), h, mi, sec);
    if (!fraction.empty()) {
        out += '.';
        out += fraction;
    }
    out += suffix;
    return out;
}

nlohmann::json timestamp_value(std::string_view text) {
    const auto t = parse_timestamp(text);
    if (!t || !t->rest.empty()) return json_text(text);
    return iso_timestamp(t->date, t->hour, t->minute, t->second, t->fraction, "");
}

// timestamptz: the zone is "+HH", "+HH:MM" or "+HH:MM:SS" (historical zones have seconds);
// the instant is written again in UTC.
nlohmann::json timestamptz_value(std::string_view text) {
    const auto t = parse_timestamp(text);
    if (!t || t->rest.empty() || (t->rest[0] != '+' && t->rest[0] != '-')) return json_text(text);
    const std::string_view zone = t->rest.substr(1);
    int zh = 0, zm = 0, zs = 0;
    if (!fixed_digits(zone, 0, 2, zh)) return json_text(text);
    if (zone.size() > 2) {
        if (zone.size() < 5 || zone[2] != ':' || !fixed_digits(zone, 3, 2, zm)) return json_text(text);
        if (zone.size() > 5 && (zone.size() != 8 || zone[5] != ':' || !fixed_digits(zone, 6, 2, zs)))
            return json_text(text);
    }
    if (zm > 59 || zs > 59) return json_text(text);
    const std::int64_t offset = (t->rest[0] == '-' ? -1 : 1) * (zh * 3600 + zm * 60 + zs);
    // A leap second (:60) is carried as the next second, as PostgreSQL itself reads it.
    const std::int64_t local = std::chrono::sys_days(t->date).time_since_epoch().count() * 86'400 +
                               t->hour * 3600 + t->minute * 60 + t->second;
    const std::int64_t utc = local - offset;
    const std::int64_t days = utc >= 0 ? utc / 86'400 : -((-utc + 86'399) / 86'400);
    const std::int64_t in_day = utc - days * 86'400;
    const std::chrono::year_month_day date{std::chrono::sys_days{std::chrono::days{days}}};
    if (date.year() < std::chrono::year{1} || date.year() > std::chrono::year{9999}) return json_text(text);
    return iso_timestamp(date, static_cast<int>(in_day / 3600), static_cast<int>(in_day / 60 % 60),
                         static_cast<int>(in_day % 60), t->fraction, "Z");
}

}  // namespace

std::string_view replica_identity_name(ReplicaIdentity identity) {
    switch (identity) {
    case ReplicaIdentity::default_key: return "DEFAULT";
    case ReplicaIdentity::nothing: return "NOTHING";
    case ReplicaIdentity::full: return "FULL";
    case ReplicaIdentity::index: return "INDEX";
    }
    return "DEFAULT";
}

std::optional<ReplicaIdentity> replica_identity_from_code(char code) {
    switch (code) {
    case 'd': return ReplicaIdentity::default_key;
    case 'n': return ReplicaIdentity::nothing;
    case 'f': return ReplicaIdentity::full;
    case 'i': return ReplicaIdentity::index;
    default: return std::nullopt;
    }
}

std::chrono::system_clock::time_point from_postgres_time(std::int64_t us) {
    // Clamped so that no value (a fuzzer's, say) overflows the conversion: system_clock
    // counts nanoseconds in 64 bits (about 292 years either side of 1970), so 146 years
    // either side of 2000 always fits.
    constexpr std::int64_t kLimit = std::numeric_limits<std::int64_t>::max() / 1000 / 2;
    const std::int64_t clamped = std::clamp(us, -kLimit, kLimit);
    return std::chrono::system_clock::time_point(std::chrono::seconds(kPostgresEpochUnixSeconds)) +
           std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::microseconds(clamped));
}

std::int64_t to_postgres_time(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() -
           kPostgresEpochUnixSeconds * 1'000'000;
}

nlohmann::json typed_value(std::uint32_t type_oid, std::string_view text) {
    switch (type_oid) {
    case type_oid::int2:
    case type_oid::int4:
    case type_oid::int8:
        if (const auto v = parse_int<std::int64_t>(text)) return *v;
        return json_text(text);
    case type_oid::oid:
        if (const auto v = parse_int<std::uint32_t>(text)) return *v;
        return json_text(text);
    case type_oid::float4:
    case type_oid::float8: return float_value(text);
    case type_oid::numeric: return numeric_value(text);
    case type_oid::boolean:
        if (text == "t") return true;
        if (text == "f") return false;
        return json_text(text);
    case type_oid::json:
    case type_oid::jsonb: {
        auto doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (doc.is_discarded()) return json_text(text);
        return doc;
    }
    case type_oid::bytea:
        if (auto b = bytea_base64(text)) return std::move(*b);
        return json_text(text);
    case type_oid::timestamptz: return timestamptz_value(text);
    case type_oid::timestamp: return timestamp_value(text);
    default:
        // date and time are already ISO 8601 under DateStyle=ISO; everything else is the
        // type's own text.
        return json_text(text);
    }
}

const Relation* Decoder::relation(std::uint32_t id) const {
    const auto it = relations_.find(id);
    return it == relations_.end() ? nullptr : &it->second;
}

DecodeResult Decoder::decode(std::string_view bytes) {
    if (bytes.empty()) return DecodeResult::malformed("an empty message");
    Reader r(bytes.substr(1));
    const char type = bytes[0];
    std::optional<Message> out;

    // The relation a row message names, or an error when the stream never described it.
    auto relation_of = [&](std::uint32_t id, std::string_view what) -> const Relation* {
        const Relation* rel = relation(id);
        if (!rel && !r.failed())
            r.fail(fmt::format("{} message for relation {}, which no Relation message described", what, id));
        return rel;
    };

    switch (type) {
    case 'B': {
        Begin b;
        b.final_lsn = r.u64("Begin's final LSN");
        b.commit_time = from_postgres_time(r.i64("Begin's commit time"));
        b.xid = r.u32("Begin's transaction id");
        out = b;
        break;
    }
    case 'C': {
        Commit c;
        c.flags = r.u8("Commit's flags");
        c.commit_lsn = r.u64("Commit's commit LSN");
        c.end_lsn = r.u64("Commit's end LSN");
        c.commit_time = from_postgres_time(r.i64("Commit's commit time"));
        out = c;
        break;
    }
    case 'O': {
        Origin o;
        o.commit_lsn = r.u64("Origin's commit LSN");
        o.name = r.cstring("Origin's name");
        out = std::move(o);
        break;
    }
    case 'R': {
        Relation rel;
        rel.id = r.u32("Relation's id");
        rel.schema = r.cstring("Relation's namespace");
        if (rel.schema.empty()) rel.schema = "pg_catalog";
        rel.name = r.cstring("Relation's name");
        const char identity = static_cast<char>(r.u8("Relation's replica identity"));
        const std::uint16_t n = r.u16("Relation's column count");
        if (!r.failed()) {
            if (const auto id = replica_identity_from_code(identity))
                rel.identity = *id;
            else
                r.fail(fmt::format("Relation {} has an unknown replica identity 0x{:02x}", rel.id,
                                   static_cast<unsigned char>(identity)));
        }
        // No reserve(n): the count is the peer's word; columns are added as they are read.
        for (std::uint16_t i = 0; i < n && !r.failed(); ++i) {
            Column c;
            const std::uint8_t flags = r.u8("a column's flags");
            c.key = (flags & 1) != 0;
            c.name = r.cstring("a column's name");
            c.type_oid = r.u32("a column's type");
            c.type_modifier = static_cast<std::int32_t>(r.u32("a column's type modifier"));
            if (!r.failed()) rel.columns.push_back(std::move(c));
        }
        if (!r.failed() && r.left() == 0) {
            const auto id = rel.id;
            relations_[id] = std::move(rel);
            out = RelationMessage{id};
        }
        break;
    }
    case 'Y': {
        TypeMessage t;
        t.type_oid = r.u32("Type's id");
        t.schema = r.cstring("Type's namespace");
        if (t.schema.empty()) t.schema = "pg_catalog";
        t.name = r.cstring("Type's name");
        out = std::move(t);
        break;
    }
    case 'I': {
        RowMessage m;
        m.operation = RowOperation::insert;
        m.relation_id = r.u32("Insert's relation id");
        const Relation* rel = relation_of(m.relation_id, "Insert");
        const char marker = static_cast<char>(r.u8("Insert's tuple marker"));
        if (!r.failed() && marker != 'N')
            r.fail(fmt::format("Insert's tuple marker is 0x{:02x}, not 'N'", static_cast<unsigned char>(marker)));
        if (r.failed()) break;
        const auto values = read_tuple(r, *rel, "Insert's new row");
        if (r.failed()) break;
        m.table = rel->qualified_name();
        m.new_image = image(*rel, values, false);
        m.keys = image(*rel, values, true);
        out = std::move(m);
        break;
    }
    case 'U': {
        RowMessage m;
        m.operation = RowOperation::update;
        m.relation_id = r.u32("Update's relation id");
        const Relation* rel = relation_of(m.relation_id, "Update");
        char marker = static_cast<char>(r.u8("Update's tuple marker"));
        if (r.failed()) break;
        if (marker == 'K' || marker == 'O') {
            const auto old_values = read_tuple(r, *rel, marker == 'K' ? "Update's old key" : "Update's old row");
            if (r.failed()) break;
            m.old_image = image(*rel, old_values, marker == 'K');
            marker = static_cast<char>(r.u8("Update's new tuple marker"));
            if (r.failed()) break;
        }
        if (marker != 'N') {
            r.fail(fmt::format("Update's tuple marker is 0x{:02x}, not 'K', 'O' or 'N'",
                               static_cast<unsigned char>(marker)));
            break;
        }
        const auto values = read_tuple(r, *rel, "Update's new row");
        if (r.failed()) break;
        m.table = rel->qualified_name();
        m.new_image = image(*rel, values, false);
        m.keys = image(*rel, values, true);
        out = std::move(m);
        break;
    }
    case 'D': {
        RowMessage m;
        m.operation = RowOperation::remove;
        m.relation_id = r.u32("Delete's relation id");
        const Relation* rel = relation_of(m.relation_id, "Delete");
        const char marker = static_cast<char>(r.u8("Delete's tuple marker"));
        if (r.failed()) break;
        if (marker != 'K' && marker != 'O') {
            r.fail(fmt::format("Delete's tuple marker is 0x{:02x}, not 'K' or 'O'", static_cast<unsigned char>(marker)));
            break;
        }
        const auto values = read_tuple(r, *rel, marker == 'K' ? "Delete's old key" : "Delete's old row");
        if (r.failed()) break;
        m.table = rel->qualified_name();
        m.old_image = image(*rel, values, marker == 'K');
        m.keys = image(*rel, values, true);
        out = std::move(m);
        break;
    }
    case 'T': {
        Truncate t;
        const std::uint32_t n = r.u32("Truncate's relation count");
        t.options = r.u8("Truncate's options");
        for (std::uint32_t i = 0; i < n && !r.failed(); ++i) {
            const std::uint32_t id = r.u32("a truncated relation's id");
            const Relation* rel = relation_of(id, "Truncate");
            if (rel) t.tables.push_back(rel->qualified_name());
        }
        out = std::move(t);
        break;
    }
    case 'M': {
        LogicalMessage m;
        m.transactional = (r.u8("Message's flags") & 1) != 0;
        m.lsn = r.u64("Message's LSN");
        m.prefix = r.cstring("Message's prefix");
        const std::uint32_t len = r.u32("Message's content length");
        m.content = std::string(r.bytes(len, "Message's content"));
        out = std::move(m);
        break;
    }
    default:
        return DecodeResult::malformed(
            fmt::format("unknown message type 0x{:02x} (protocol version 1 has B, C, O, R, Y, I, U, D, T and M)",
                        static_cast<unsigned char>(type)));
    }

    if (r.failed()) return DecodeResult::malformed(r.error());
    if (r.left() != 0)
        return DecodeResult::malformed(
            fmt::format("{} unexpected bytes after a message of type '{}'", r.left(), type));
    return DecodeResult::decoded(std::move(*out));
}

}  // namespace funcd::pgoutput
