#include "funcd/state/pg_session.hpp"

#include <libpq-fe.h>

#include "funcd/common/api_error.hpp"

namespace funcd {

PgSession::PgSession(std::string conninfo) : conninfo_(std::move(conninfo)), conn_(PgConnection::connect(conninfo_)) {}

PgConnection& PgSession::connection() {
    if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) conn_ = PgConnection::connect(conninfo_);
    return conn_;
}

void PgSession::rethrow_unreachable(const PgError& e) {
    // No SQLSTATE and no good connection: libpq's own failure to reach the server (no SQLSTATE
    // on a good one is funcd's finding about what it read). Class 08: connection exceptions;
    // 57P0x: the server shutting down or crashed. Anything else is the statement's.
    const std::string& state = e.sqlstate();
    const bool lost = !conn_ || PQstatus(conn_.get()) != CONNECTION_OK;
    const bool unreachable = (state.empty() && lost) || state.starts_with("08") || state.starts_with("57P0");
    if (!unreachable) return;
    if (lost) conn_.reset();
    throw ApiError::storage_unavailable(std::string("the shared state's database cannot be reached: ") + e.what());
}

}  // namespace funcd
