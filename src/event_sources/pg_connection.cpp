#include "funcd/event_sources/pg_connection.hpp"

#include <libpq-fe.h>

#include <memory>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace funcd {
namespace {

// A blocking connection that is never answered would hold its thread for the kernel's TCP
// timeout (minutes); libpq's own default is no timeout. Ten seconds is generous for a
// server on the same network and short enough for an API call to report it.
constexpr const char* kDefaultConnectTimeoutSeconds = "10";

// libpq's and the server's messages run over several lines ("...\n\tThis probably means
// the server terminated abnormally"): one line for logs and error documents.
std::string one_line(const char* message) {
    std::string out;
    bool space = false;
    for (const char* p = message ? message : ""; *p; ++p) {
        if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += *p;
    }
    return out;
}

// Notices (NOTICE, WARNING: "publication ... does not exist, skipping") would go to the
// daemon's stderr by libpq's default; they go to the log instead.
void log_notice(void*, const char* message) { spdlog::debug("PostgreSQL: {}", one_line(message)); }

}  // namespace

const std::optional<std::string>& PgRows::at(std::size_t row, std::string_view name) const {
    for (std::size_t i = 0; i < columns.size(); ++i)
        if (columns[i] == name) return rows.at(row).at(i);
    throw std::out_of_range(fmt::format("no column named '{}' in the result", name));
}

std::vector<const char*> PgConnectParams::keyword_ptrs() const {
    std::vector<const char*> out;
    for (const auto& k : keywords) out.push_back(k.c_str());
    out.push_back(nullptr);
    return out;
}

std::vector<const char*> PgConnectParams::value_ptrs() const {
    std::vector<const char*> out;
    for (const auto& v : values) out.push_back(v.c_str());
    out.push_back(nullptr);
    return out;
}

PgConnectParams pg_connect_params(std::string_view conninfo,
                                  const std::vector<std::pair<std::string, std::string>>& extra) {
    char* parse_error = nullptr;
    PQconninfoOption* options = PQconninfoParse(std::string(conninfo).c_str(), &parse_error);
    if (!options) {
        // libpq's message quotes the part it could not read, which may be the password.
        if (parse_error) PQfreemem(parse_error);
        throw PgError("the connection string is not valid (libpq cannot parse it; it is not repeated here "
                      "because it may hold a password)");
    }
    PgConnectParams p;
    bool has_timeout = false;
    for (const PQconninfoOption* o = options; o->keyword; ++o) {
        if (!o->val) continue;
        p.keywords.emplace_back(o->keyword);
        p.values.emplace_back(o->val);
        if (p.keywords.back() == "connect_timeout") has_timeout = true;
    }
    PQconninfoFree(options);
    if (!has_timeout) {
        p.keywords.emplace_back("connect_timeout");
        p.values.emplace_back(kDefaultConnectTimeoutSeconds);
    }
    for (const auto& [key, value] : extra) {
        bool merged = false;
        for (std::size_t i = 0; i < p.keywords.size(); ++i) {
            if (p.keywords[i] != key) continue;
            p.values[i] = key == "options" && !p.values[i].empty() ? p.values[i] + " " + value : value;
            merged = true;
        }
        if (!merged) {
            p.keywords.push_back(key);
            p.values.push_back(value);
        }
    }
    return p;
}

std::string pg_error_message(const PGconn* conn) {
    return conn ? one_line(PQerrorMessage(conn)) : std::string("out of memory allocating a libpq connection");
}

void route_notices_to_log(PGconn* conn) { PQsetNoticeProcessor(conn, log_notice, nullptr); }

std::string one_line_message(const char* message) { return one_line(message); }

std::int64_t pg_int(const std::optional<std::string>& value) { return value ? std::stoll(*value) : 0; }

std::string pg_unescape_bytea(const std::string& text) {
    std::size_t length = 0;
    unsigned char* bytes = PQunescapeBytea(reinterpret_cast<const unsigned char*>(text.c_str()), &length);
    if (!bytes) throw PgError("cannot read a bytea value");
    std::string out(reinterpret_cast<const char*>(bytes), length);
    PQfreemem(bytes);
    return out;
}

PgConnection PgConnection::connect(std::string_view conninfo,
                                   const std::vector<std::pair<std::string, std::string>>& extra) {
    const auto params = pg_connect_params(conninfo, extra);
    const auto keys = params.keyword_ptrs();
    const auto values = params.value_ptrs();
    PgConnection c(PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/0));
    if (c.conn_) route_notices_to_log(c.conn_);
    if (!c.conn_ || PQstatus(c.conn_) != CONNECTION_OK)
        throw PgError(fmt::format("cannot connect to PostgreSQL: {}", pg_error_message(c.conn_)));
    return c;
}

PgConnection& PgConnection::operator=(PgConnection&& other) noexcept {
    if (this != &other) {
        reset();
        conn_ = std::exchange(other.conn_, nullptr);
    }
    return *this;
}

PgConnection::~PgConnection() { reset(); }

void PgConnection::reset() noexcept {
    if (conn_) PQfinish(std::exchange(conn_, nullptr));
}

namespace {

// A result, cleared when this goes; throws PgError (with the server's SQLSTATE) unless it
// is a success.
std::unique_ptr<PGresult, decltype(&PQclear)> checked_result(PGconn* conn, PGresult* res) {
    std::unique_ptr<PGresult, decltype(&PQclear)> owned(res, &PQclear);
    if (!res) throw PgError(pg_error_message(conn));
    const auto status = PQresultStatus(res);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        throw PgError(primary ? std::string(primary) : one_line(PQresultErrorMessage(res)), state ? state : "");
    }
    return owned;
}

}  // namespace

void PgConnection::execute_script(std::string_view sql) {
    if (!conn_) throw PgError("no connection to PostgreSQL");
    // PQexec runs every statement of the string; its last result tells of the first failure.
    checked_result(conn_, PQexec(conn_, std::string(sql).c_str()));
}

PgRows PgConnection::query(std::string_view sql, const std::vector<std::optional<std::string>>& params,
                           const std::vector<bool>& binary) {
    if (!conn_) throw PgError("no connection to PostgreSQL");
    std::vector<const char*> values;
    std::vector<int> lengths;
    std::vector<int> formats;
    for (std::size_t i = 0; i < params.size(); ++i) {
        values.push_back(params[i] ? params[i]->data() : nullptr);
        lengths.push_back(params[i] ? static_cast<int>(params[i]->size()) : 0);
        formats.push_back(i < binary.size() && binary[i] ? 1 : 0);
    }
    const auto owned = checked_result(
        conn_, PQexecParams(conn_, std::string(sql).c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                            lengths.data(), formats.data(), /*resultFormat=*/0));
    PGresult* res = owned.get();
    PgRows rows;
    const int ncols = PQnfields(res);
    for (int c = 0; c < ncols; ++c) rows.columns.emplace_back(PQfname(res, c));
    const int nrows = PQntuples(res);
    rows.rows.reserve(static_cast<std::size_t>(nrows));
    for (int r = 0; r < nrows; ++r) {
        auto& row = rows.rows.emplace_back();
        for (int c = 0; c < ncols; ++c) {
            if (PQgetisnull(res, r, c))
                row.emplace_back(std::nullopt);
            else
                row.emplace_back(std::string(PQgetvalue(res, r, c), static_cast<std::size_t>(PQgetlength(res, r, c))));
        }
    }
    return rows;
}

std::string PgConnection::quote_identifier(std::string_view name) {
    char* q = PQescapeIdentifier(conn_, name.data(), name.size());
    if (!q) throw PgError(fmt::format("cannot quote an identifier: {}", pg_error_message(conn_)));
    std::string out(q);
    PQfreemem(q);
    return out;
}

std::string PgConnection::quote_literal(std::string_view value) {
    char* q = PQescapeLiteral(conn_, value.data(), value.size());
    if (!q) throw PgError(fmt::format("cannot quote a literal: {}", pg_error_message(conn_)));
    std::string out(q);
    PQfreemem(q);
    return out;
}

}  // namespace funcd
