#pragma once
// One store's way to the shared PostgreSQL database: a connection used by one caller at a
// time, made again when it was lost (the query that found it lost fails to its caller; the
// next one connects), and transactions that roll back when their body throws. A database that
// cannot be reached is ApiError::storage_unavailable (503: the caller may try again, on this
// node or another); any other failure is the PgError itself.
//
// Calls block on the database: blocking and bulk pools or a thread of their own, never the loop.
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>

#include "funcd/event_sources/pg_connection.hpp"

namespace funcd {

// Runs `body(conn)` between BEGIN (`begin` may name an isolation level) and COMMIT; when the
// body throws, the transaction is rolled back and the exception goes on to the caller.
template <class Body>
auto pg_transaction(PgConnection& conn, Body&& body, const char* begin = "BEGIN") -> decltype(body(conn)) {
    conn.query(begin);
    try {
        if constexpr (std::is_void_v<decltype(body(conn))>) {
            body(conn);
            conn.query("COMMIT");
        } else {
            auto result = body(conn);
            conn.query("COMMIT");
            return result;
        }
    } catch (...) {
        try {
            conn.query("ROLLBACK");
        } catch (const PgError&) {
            // The connection is gone; the server rolled the transaction back itself.
        }
        throw;
    }
}

class PgSession {
public:
    // Connects now: throws PgError when the database cannot be reached.
    explicit PgSession(std::string conninfo);

    // `body(conn)` with the connection held for this caller alone.
    template <class Body>
    auto run(Body&& body) -> decltype(body(std::declval<PgConnection&>())) {
        std::lock_guard lock(mutex_);
        try {
            return body(connection());
        } catch (const PgError& e) {
            rethrow_unreachable(e);
            throw;
        }
    }

    // `body(conn)` in one transaction (see pg_transaction).
    template <class Body>
    auto transaction(Body&& body, const char* begin = "BEGIN") -> decltype(body(std::declval<PgConnection&>())) {
        return run([&](PgConnection& conn) { return pg_transaction(conn, std::forward<Body>(body), begin); });
    }

private:
    PgConnection& connection();
    // Throws ApiError::storage_unavailable when `e` says the database cannot be reached.
    void rethrow_unreachable(const PgError& e);

    std::mutex mutex_;
    std::string conninfo_;
    PgConnection conn_;
};

}  // namespace funcd
