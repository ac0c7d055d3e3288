#pragma once
// Decodes the messages of PostgreSQL's built-in logical decoding output plugin, pgoutput,
// protocol version 1 ("Logical Replication Message Formats" in PostgreSQL's documentation):
// the payload of each XLogData message of a START_REPLICATION ... LOGICAL stream.
//
// Pure: bytes in, a typed message or an error naming what is wrong out. The input comes
// from a network peer, so nothing is trusted: every length is checked against what is
// left, and malformed input never reads out of bounds.
//
// Row values arrive in pgoutput's text format (the type's output function, run in the
// server's walsender with the settings the connection chose; PostgresChangeSource
// asks for DateStyle=ISO, TimeZone=UTC, bytea_output=hex). They are typed by column type OID:
//   int2, int4, int8, oid              JSON integers (int8 exactly: nlohmann keeps int64,
//                                      though a JavaScript reader loses digits past 2^53)
//   float4, float8                     numbers; NaN, Infinity, -Infinity as those strings
//   numeric                            a number when its JSON text has the same decimal
//                                      value (trailing zeros of the scale are not kept:
//                                      1.50 -> 1.5), else the text as a string (NaN,
//                                      Infinity, more digits than a double holds)
//   bool                               true / false
//   json, jsonb                        the parsed JSON value
//   bytea                              base64 of the bytes (from the hex form "\x...")
//   timestamptz                        ISO 8601 in UTC: 2026-01-02T03:04:05.123456Z
//   timestamp                          ISO 8601 without a zone: 2026-01-02T03:04:05.123456
//   date, time                         their ISO text: 2026-01-02, 03:04:05.123456
//   NULL                               null
//   anything else (text, varchar, uuid, arrays, enums, intervals, ranges, geometry,
//   infinite or BC dates and timestamps...)  the server's text
// Text is made valid UTF-8 for JSON: a byte that starts no UTF-8 sequence (only a SQL_ASCII
// database sends such) becomes U+FFFD; names of tables and columns too.
// A column whose value is an unchanged TOASTed value (pgoutput's 'u': the update did not
// touch it and its old value is stored out of line) is left out of that image: the server
// does not send it, and null would claim a value it does not have.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "funcd/event_sources/row_change.hpp"

namespace funcd::pgoutput {

// Type OIDs of the built-in types typed above (PostgreSQL's pg_type.dat; fixed since 7.x).
namespace type_oid {
inline constexpr std::uint32_t boolean = 16;
inline constexpr std::uint32_t bytea = 17;
inline constexpr std::uint32_t int8 = 20;
inline constexpr std::uint32_t int2 = 21;
inline constexpr std::uint32_t int4 = 23;
inline constexpr std::uint32_t text = 25;
inline constexpr std::uint32_t oid = 26;
inline constexpr std::uint32_t json = 114;
inline constexpr std::uint32_t float4 = 700;
inline constexpr std::uint32_t float8 = 701;
inline constexpr std::uint32_t varchar = 1043;
inline constexpr std::uint32_t date = 1082;
inline constexpr std::uint32_t time = 1083;
inline constexpr std::uint32_t timestamp = 1114;
inline constexpr std::uint32_t timestamptz = 1184;
inline constexpr std::uint32_t numeric = 1700;
inline constexpr std::uint32_t uuid = 2950;
inline constexpr std::uint32_t jsonb = 3802;
}  // namespace type_oid

// A table's REPLICA IDENTITY: which old values its updates and deletes carry.
enum class ReplicaIdentity { default_key, nothing, full, index };
// "DEFAULT", "NOTHING", "FULL", "INDEX"
std::string_view replica_identity_name(ReplicaIdentity identity);
// From pg_class.relreplident / pgoutput's byte: 'd', 'n', 'f', 'i'.
std::optional<ReplicaIdentity> replica_identity_from_code(char code);

struct Column {
    std::string name;
    std::uint32_t type_oid = 0;
    std::int32_t type_modifier = -1;
    bool key = false;  // part of the replica identity (every column under FULL)
};

struct Relation {
    std::uint32_t id = 0;
    std::string schema;  // "pg_catalog" when pgoutput sends an empty namespace
    std::string name;
    ReplicaIdentity identity = ReplicaIdentity::default_key;
    std::vector<Column> columns;

    std::string qualified_name() const { return schema + "." + name; }
};

struct Begin {
    std::uint64_t final_lsn = 0;  // the LSN of the transaction's commit record
    std::chrono::system_clock::time_point commit_time;
    std::uint32_t xid = 0;
};

struct Commit {
    std::uint8_t flags = 0;
    std::uint64_t commit_lsn = 0;  // the LSN of the commit record
    std::uint64_t end_lsn = 0;     // the end of the transaction: what a client confirms
    std::chrono::system_clock::time_point commit_time;
};

struct Origin {
    std::uint64_t commit_lsn = 0;
    std::string name;
};

// A Relation message: the cache is updated; the message says which relation.
struct RelationMessage {
    std::uint32_t relation_id = 0;
};

struct TypeMessage {
    std::uint32_t type_oid = 0;
    std::string schema;
    std::string name;
};

// Insert, Update or Delete, typed. keys: the replica identity columns (from the new row,
// or from the old one for a delete); old_image: null when the message carried no old row,
// the key columns alone for an old key ('K'), the whole old row for REPLICA IDENTITY FULL ('O').
struct RowMessage {
    RowOperation operation = RowOperation::insert;
    std::uint32_t relation_id = 0;
    std::string table;  // "schema.name"
    nlohmann::json keys = nlohmann::json::object();
    nlohmann::json new_image;
    nlohmann::json old_image;
};

struct Truncate {
    std::uint8_t options = 0;  // 1: CASCADE, 2: RESTART IDENTITY
    std::vector<std::string> tables;
};

// pg_logical_emit_message() output, sent only with the `messages` option.
struct LogicalMessage {
    bool transactional = false;
    std::uint64_t lsn = 0;
    std::string prefix;
    std::string content;
};

using Message =
    std::variant<Begin, Commit, Origin, RelationMessage, TypeMessage, RowMessage, Truncate, LogicalMessage>;

// What decoding one message gave.
class DecodeResult {
public:
    static DecodeResult decoded(Message message) { return DecodeResult(std::move(message), {}); }
    static DecodeResult malformed(std::string error) { return DecodeResult(std::nullopt, std::move(error)); }

    bool ok() const { return message_.has_value(); }
    const Message& message() const { return *message_; }
    Message& message() { return *message_; }
    const std::string& error() const { return error_; }

private:
    DecodeResult(std::optional<Message> m, std::string e) : message_(std::move(m)), error_(std::move(e)) {}
    std::optional<Message> message_;
    std::string error_;
};

// Microseconds since 2000-01-01 00:00 UTC (PostgreSQL's epoch) as a time point.
std::chrono::system_clock::time_point from_postgres_time(std::int64_t us);
// And back, for the standby status updates a client sends.
std::int64_t to_postgres_time(std::chrono::system_clock::time_point t);

// One column value from pgoutput's text format, typed by its type OID (the table above).
nlohmann::json typed_value(std::uint32_t type_oid, std::string_view text);

class Decoder {
public:
    // Decodes one message. Relation messages update the cache that row messages are typed
    // with; a row message for a relation the stream has not described is an error.
    DecodeResult decode(std::string_view bytes);

    const Relation* relation(std::uint32_t id) const;

private:
    std::unordered_map<std::uint32_t, Relation> relations_;
};

}  // namespace funcd::pgoutput
