#pragma once
// One libpq connection to PostgreSQL, owned (closed exactly once), with the few things the
// event sources need: connecting from a connection string, running SQL and reading its
// rows, quoting names and values.
//
// A connection string holds a password more often than not, so it is never logged and
// never part of an error: errors carry PostgreSQL's (or libpq's) own message, which names
// the host, port and user but not the password.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// libpq's handle types, as libpq-fe.h declares them, so that users of this header need not
// include libpq's.
typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace funcd {

// A failure PostgreSQL or libpq reported. `sqlstate` is the server's error code ("42P01"
// for a missing table), empty when the failure was the client's or the connection's.
class PgError : public std::runtime_error {
public:
    PgError(std::string message, std::string sqlstate = {})
        : std::runtime_error(std::move(message)), sqlstate_(std::move(sqlstate)) {}
    const std::string& sqlstate() const { return sqlstate_; }

private:
    std::string sqlstate_;
};

// The rows of one query, every value in PostgreSQL's text form (nullopt for NULL).
struct PgRows {
    std::vector<std::string> columns;
    std::vector<std::vector<std::optional<std::string>>> rows;

    bool empty() const { return rows.empty(); }
    // The value of row `row`, column `name`; throws std::out_of_range for an unknown column.
    const std::optional<std::string>& at(std::size_t row, std::string_view name) const;
};

// Keyword/value pairs for PQconnectStartParams/PQconnectdbParams: the connection string's
// own, then `extra` (which override the string's; "options" is appended to the string's
// options instead). Throws PgError when the string cannot be parsed, without repeating it.
struct PgConnectParams {
    std::vector<std::string> keywords;
    std::vector<std::string> values;

    // NULL-terminated arrays pointing into this object, for libpq.
    std::vector<const char*> keyword_ptrs() const;
    std::vector<const char*> value_ptrs() const;
};
PgConnectParams pg_connect_params(std::string_view conninfo,
                                  const std::vector<std::pair<std::string, std::string>>& extra);

// libpq's message for the connection's last failure, on one line.
std::string pg_error_message(const PGconn* conn);
// A message of libpq's or the server's on one line.
std::string one_line_message(const char* message);
// An integer value as query() returns it (text); 0 for NULL.
std::int64_t pg_int(const std::optional<std::string>& value);
// A bytea value as query() returns it (PostgreSQL's text form) turned back into its bytes.
// Throws PgError when it is not in that form.
std::string pg_unescape_bytea(const std::string& text);
// Sends the connection's notices to the log (debug) instead of libpq's default, stderr.
void route_notices_to_log(PGconn* conn);

class PgConnection {
public:
    // Connects and waits for it (for setup work on a blocking thread, never the loop).
    // `extra` as pg_connect_params. Throws PgError with libpq's message.
    static PgConnection connect(std::string_view conninfo,
                                const std::vector<std::pair<std::string, std::string>>& extra = {});

    PgConnection() = default;
    explicit PgConnection(PGconn* conn) noexcept : conn_(conn) {}
    PgConnection(PgConnection&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
    PgConnection& operator=(PgConnection&& other) noexcept;
    PgConnection(const PgConnection&) = delete;
    PgConnection& operator=(const PgConnection&) = delete;
    ~PgConnection();

    PGconn* get() const noexcept { return conn_; }
    explicit operator bool() const noexcept { return conn_ != nullptr; }
    void reset() noexcept;

    // Runs `sql` (one statement), with `params` as $1, $2... (text; nullopt for NULL), and
    // returns its rows. Throws PgError with the server's message and SQLSTATE. A parameter
    // whose `binary` entry is true is sent as bytes, as is (for bytea).
    PgRows query(std::string_view sql, const std::vector<std::optional<std::string>>& params = {},
                 const std::vector<bool>& binary = {});

    // Runs `sql`, which may hold several statements (a migration script), without
    // parameters; throws PgError at the first that fails.
    void execute_script(std::string_view sql);

    // "name" quoted as an SQL identifier / 'value' as a literal, as this server reads them.
    std::string quote_identifier(std::string_view name);
    std::string quote_literal(std::string_view value);

private:
    PGconn* conn_ = nullptr;
};

}  // namespace funcd
