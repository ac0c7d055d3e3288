#include "funcd/event_sources/postgres_change_source.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <stdexcept>

#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace funcd {
namespace {

// Settings of the replication connection. pgoutput writes values with the types'
// output functions in the walsender, with these settings, so they fix the text the decoder types:
// ISO dates, UTC timestamps, hex bytea, floats exact.
constexpr const char* kConnectionOptions =
    "-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=postgres -c bytea_output=hex -c extra_float_digits=3";

// The replication protocol's message sizes (PostgreSQL's "Streaming Replication Protocol").
constexpr std::size_t kXLogDataHeader = 1 + 8 + 8 + 8;       // 'w', start, end, send time
constexpr std::size_t kKeepaliveSize = 1 + 8 + 8 + 1;        // 'k', end, send time, reply
constexpr std::size_t kStatusUpdateSize = 1 + 8 + 8 + 8 + 8 + 1;  // 'r', write, flush, apply, time, reply

bool plain_name(const std::string& s) {
    if (s.empty() || s.size() > 63) return false;
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

std::uint64_t read_u64(const char* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
}

void write_u64(char* p, std::uint64_t v) {
    for (int i = 7; i >= 0; --i) {
        p[i] = static_cast<char>(v & 0xFF);
        v >>= 8;
    }
}


}  // namespace

template <class F>
auto PostgresChangeSource::guarded(F f) {
    // Callbacks may run after the source is gone (its timers and socket cancel theirs on
    // destruction, but the completions are still queued): they then do nothing.
    return [alive = std::weak_ptr<char>(alive_), f = std::move(f)](auto&&... args) mutable {
        if (alive.expired()) return;
        f(std::forward<decltype(args)>(args)...);
    };
}

PostgresChangeSource::PostgresChangeSource(boost::asio::io_context& io, PostgresSourceConfig config,
                                           EventSourceLimits limits)
    : io_(io),
      config_(std::move(config)),
      limits_(limits),
      retry_timer_(io),
      connect_timer_(io),
      status_timer_(io) {
    if (!plain_name(config_.slot) || !plain_name(config_.publication))
        throw std::invalid_argument("a PostgreSQL event source's slot and publication names are made of a-z, 0-9 "
                                    "and _ (postgres_source_names)");
    if (limits_.max_buffered_changes == 0) limits_.max_buffered_changes = 1;
    if (limits_.max_buffered_bytes == 0) limits_.max_buffered_bytes = 1;
}

PostgresChangeSource::~PostgresChangeSource() { stop(); }

void PostgresChangeSource::start(ChangePosition after) {
    if (phase_ != Phase::idle) return;
    skip_through_ = after;
    // Everything at or before `after` was delivered; a transaction cut by it was not
    // wholly, so only the transactions before its commit are confirmed (below its LSN).
    spdlog::info("event source {}: reading slot {} after {}#{}", config_.name, config_.slot,
                 format_lsn(after.commit_lsn), after.ordinal);
    connect();
}

void PostgresChangeSource::connect() {
    phase_ = Phase::connecting;
    ++generation_;
    PgConnectParams params;
    try {
        params = pg_connect_params(config_.conninfo, {{"replication", "database"},
                                                      {"options", kConnectionOptions},
                                                      {"application_name", "funcd_" + config_.name}});
    } catch (const PgError& e) {
        fail(e.what());
        return;
    }
    const auto keys = params.keyword_ptrs();
    const auto values = params.value_ptrs();
    conn_ = PgConnection(PQconnectStartParams(keys.data(), values.data(), /*expand_dbname=*/0));
    if (!conn_ || PQstatus(conn_.get()) == CONNECTION_BAD) {
        fail(fmt::format("cannot connect to PostgreSQL: {}", pg_error_message(conn_.get())));
        return;
    }
    route_notices_to_log(conn_.get());
    connect_timer_.expires_after(postgres_source::kConnectTimeout);
    connect_timer_.async_wait(guarded([this, gen = generation_](const boost::system::error_code& ec) {
        if (ec || gen != generation_ || phase_ == Phase::streaming) return;
        fail(fmt::format("connecting to PostgreSQL took longer than {} s",
                         std::chrono::duration_cast<std::chrono::seconds>(postgres_source::kConnectTimeout).count()));
    }));
    // libpq's protocol: before the first PQconnectPoll, behave as if it returned WRITING.
    connect_poll_ = PGRES_POLLING_WRITING;
    wait_socket(true);
}

void PostgresChangeSource::poll_connect() {
    connect_poll_ = PQconnectPoll(conn_.get());
    switch (connect_poll_) {
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(conn_.get(), 1) != 0) {
            fail(fmt::format("cannot make the PostgreSQL connection non-blocking: {}", pg_error_message(conn_.get())));
            return;
        }
        send_key_query();
        return;
    case PGRES_POLLING_FAILED:
        fail(fmt::format("cannot connect to PostgreSQL: {}", pg_error_message(conn_.get())));
        return;
    case PGRES_POLLING_READING: wait_socket(false); return;
    default: wait_socket(true); return;
    }
}

void PostgresChangeSource::wait_socket(bool for_write) {
    const int fd = PQsocket(conn_.get());
    if (fd < 0) {
        fail(fmt::format("the PostgreSQL connection has no socket: {}", pg_error_message(conn_.get())));
        return;
    }
    // libpq may open a new socket while connecting (another address of the host, or a
    // retry without TLS): follow it. The descriptor only watches libpq's socket; release()
    // hands it back unclosed, since libpq closes it.
    if (socket_ && socket_->native_handle() != fd) {
        boost::system::error_code ignored;
        socket_->cancel(ignored);
        socket_->release();
        socket_.reset();
        waiting_read_ = waiting_write_ = false;
    }
    if (!socket_) {
        socket_.emplace(io_);
        boost::system::error_code ec;
        socket_->assign(fd, ec);
        if (ec) {
            socket_.reset();
            fail(fmt::format("cannot watch the PostgreSQL connection's socket: {}", ec.message()));
            return;
        }
    }
    bool& waiting = for_write ? waiting_write_ : waiting_read_;
    if (waiting) return;
    waiting = true;
    socket_->async_wait(
        for_write ? boost::asio::posix::stream_descriptor::wait_write : boost::asio::posix::stream_descriptor::wait_read,
        guarded([this, for_write, gen = generation_](const boost::system::error_code& ec) {
            if (gen != generation_) return;
            (for_write ? waiting_write_ : waiting_read_) = false;
            if (ec) {
                if (ec != boost::asio::error::operation_aborted)
                    fail(fmt::format("waiting on the PostgreSQL connection failed: {}", ec.message()));
                return;
            }
            switch (phase_) {
            case Phase::connecting: poll_connect(); break;
            case Phase::keys:
                if (for_write)
                    flush_output();
                else
                    on_key_result();
                break;
            case Phase::starting:
                if (for_write)
                    flush_output();
                else
                    on_start_result();
                break;
            case Phase::streaming:
                if (for_write)
                    flush_output();
                else
                    on_readable();
                break;
            default: break;
            }
        }));
}

void PostgresChangeSource::send_key_query() {
    phase_ = Phase::keys;
    // A replication connection of a database takes plain SQL before START_REPLICATION. The
    // publication's name is one postgres_source_names() made (a-z, 0-9, _: checked by the
    // constructor), so it can stand in the text.
    const std::string query = fmt::format(
        "SELECT pt.schemaname || '.' || pt.tablename, a.attname "
        "FROM pg_publication_tables pt "
        "JOIN pg_namespace n ON n.nspname = pt.schemaname "
        "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename "
        "JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary "
        "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position) ON true "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
        "WHERE pt.pubname = '{}' ORDER BY 1, k.position",
        config_.publication);
    if (!PQsendQuery(conn_.get(), query.c_str())) {
        fail(fmt::format("cannot ask for the tables' primary keys: {}", pg_error_message(conn_.get())));
        return;
    }
    flush_output();
    if (phase_ == Phase::keys) wait_socket(false);
}

void PostgresChangeSource::on_key_result() {
    if (!PQconsumeInput(conn_.get())) {
        fail(fmt::format("reading the tables' primary keys: {}", pg_error_message(conn_.get())));
        return;
    }
    if (PQisBusy(conn_.get())) {
        wait_socket(false);
        return;
    }
    std::map<std::string, std::vector<std::string>> keys;
    std::string error;
    while (PGresult* res = PQgetResult(conn_.get())) {
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            for (int row = 0; row < PQntuples(res); ++row)
                keys[PQgetvalue(res, row, 0)].emplace_back(PQgetvalue(res, row, 1));
        } else if (error.empty()) {
            error = one_line_message(PQresultErrorMessage(res));
        }
        PQclear(res);
    }
    if (!error.empty()) {
        fail(fmt::format("reading the tables' primary keys failed: {}", error));
        return;
    }
    primary_keys_ = std::move(keys);
    send_start();
}

void PostgresChangeSource::send_start() {
    phase_ = Phase::starting;
    // Where the server starts: the acknowledged position (it takes the slot's own when that
    // is later). Not `after`: a transaction `after` cuts in the middle ends at its commit,
    // and starting there would skip the rest of it.
    const std::string command =
        fmt::format("START_REPLICATION SLOT \"{}\" LOGICAL {} (proto_version '1', publication_names '\"{}\"')",
                    config_.slot, format_lsn(acknowledged_), config_.publication);
    if (!PQsendQuery(conn_.get(), command.c_str())) {
        fail(fmt::format("cannot send START_REPLICATION: {}", pg_error_message(conn_.get())));
        return;
    }
    flush_output();
    if (phase_ == Phase::starting) wait_socket(false);
}

void PostgresChangeSource::on_start_result() {
    if (!PQconsumeInput(conn_.get())) {
        fail(fmt::format("starting replication: {}", pg_error_message(conn_.get())));
        return;
    }
    if (PQisBusy(conn_.get())) {
        wait_socket(false);
        return;
    }
    PGresult* res = PQgetResult(conn_.get());
    const auto status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    const std::string message = res ? one_line_message(PQresultErrorMessage(res)) : pg_error_message(conn_.get());
    PQclear(res);
    if (status != PGRES_COPY_BOTH) {
        fail(fmt::format("START_REPLICATION of slot {} failed: {}", config_.slot, message));
        return;
    }
    phase_ = Phase::streaming;
    connected_ = true;
    connect_timer_.cancel();
    if (!oversized_) retry_delay_ = postgres_source::kFirstRetryDelay;
    last_message_ = std::chrono::steady_clock::now();
    decoder_ = pgoutput::Decoder{};
    spdlog::info("event source {}: streaming slot {} from {}", config_.name, config_.slot, format_lsn(acknowledged_));
    send_status();
    schedule_status();
    drain();
}

void PostgresChangeSource::on_readable() {
    if (!PQconsumeInput(conn_.get())) {
        fail(fmt::format("reading from PostgreSQL: {}", pg_error_message(conn_.get())));
        return;
    }
    drain();
}

bool PostgresChangeSource::full() const {
    return buffer_.size() >= limits_.max_buffered_changes || buffered_bytes_ >= limits_.max_buffered_bytes;
}

void PostgresChangeSource::drain() {
    if (phase_ != Phase::streaming) return;
    for (int handled = 0;; ++handled) {
        // A transaction half read is read on: its changes have no position before its Commit.
        if (full() && !txn_) {
            if (!paused_) spdlog::debug("event source {}: buffer full, no longer reading", config_.name);
            paused_ = true;
            return;
        }
        paused_ = false;
        if (handled == postgres_source::kMessagesPerTurn) {
            if (!drain_posted_) {
                drain_posted_ = true;
                boost::asio::post(io_, guarded([this, gen = generation_] {
                    drain_posted_ = false;
                    if (gen == generation_) drain();
                }));
            }
            return;
        }
        char* buf = nullptr;
        const int n = PQgetCopyData(conn_.get(), &buf, /*async=*/1);
        if (n == 0) {
            wait_socket(false);
            return;
        }
        if (n == -1) {
            // The server ended the stream (a shutdown, an administrator's command): its
            // reason is in the result that follows.
            std::string reason = "the server ended the replication stream";
            while (PGresult* res = PQgetResult(conn_.get())) {
                const std::string m = one_line_message(PQresultErrorMessage(res));
                if (!m.empty()) reason += ": " + m;
                PQclear(res);
                if (PQisBusy(conn_.get())) break;
            }
            fail(reason);
            return;
        }
        if (n < 0) {
            fail(fmt::format("reading the replication stream: {}", pg_error_message(conn_.get())));
            return;
        }
        last_message_ = std::chrono::steady_clock::now();
        const bool ok = handle_copy(buf, static_cast<std::size_t>(n));
        PQfreemem(buf);
        if (!ok) return;
    }
}

bool PostgresChangeSource::handle_copy(const char* data, std::size_t size) {
    switch (data[0]) {
    case 'w': {
        if (size < kXLogDataHeader) {
            fail(fmt::format("an XLogData message of {} bytes, shorter than its header", size));
            return false;
        }
        const std::uint64_t start = read_u64(data + 1);
        const std::uint64_t end = read_u64(data + 9);
        server_wal_end_ = std::max(server_wal_end_.value_or(0), end);
        received_ = std::max(received_, start);
        return handle_message(start, std::string_view(data + kXLogDataHeader, size - kXLogDataHeader));
    }
    case 'k': {
        if (size < kKeepaliveSize) {
            fail(fmt::format("a keepalive message of {} bytes, shorter than its {}", size, kKeepaliveSize));
            return false;
        }
        const std::uint64_t end = read_u64(data + 1);
        server_wal_end_ = std::max(server_wal_end_.value_or(0), end);
        received_ = std::max(received_, end);
        // Between transactions, everything before this position was sent: it may be
        // confirmed once all read was acknowledged (confirmable()).
        if (!txn_) idle_confirmable_ = std::max(idle_confirmable_, end);
        if (data[kKeepaliveSize - 1] != 0) send_status();
        return true;
    }
    default:
        fail(fmt::format("an unknown replication message type 0x{:02x}", static_cast<unsigned char>(data[0])));
        return false;
    }
}

bool PostgresChangeSource::handle_message(std::uint64_t lsn, std::string_view payload) {
    auto result = decoder_.decode(payload);
    if (!result.ok()) {
        fail(fmt::format("a malformed pgoutput message at {}: {}", format_lsn(lsn), result.error()));
        return false;
    }
    auto& message = result.message();
    if (auto* begin = std::get_if<pgoutput::Begin>(&message)) {
        if (txn_) {
            fail(fmt::format("a Begin at {} inside the transaction begun for {}", format_lsn(lsn),
                             format_lsn(txn_->begin.final_lsn)));
            return false;
        }
        txn_.emplace();
        txn_->begin = *begin;
        return true;
    }
    if (auto* row = std::get_if<pgoutput::RowMessage>(&message)) {
        if (!txn_) {
            fail(fmt::format("a row change at {} outside a transaction", format_lsn(lsn)));
            return false;
        }
        txn_->bytes += payload.size();
        if (txn_->bytes > limits_.max_transaction_bytes) {
            fail(fmt::format("transaction {} (committing at {}) has more than event_sources.max_transaction_bytes "
                             "({} bytes) of changes, more than a mapping holds; it stays in the slot, and is read "
                             "once the limit is raised (--limit event_sources.max_transaction_bytes=BYTES)",
                             txn_->begin.xid, format_lsn(txn_->begin.final_lsn), limits_.max_transaction_bytes));
            oversized_ = true;
            return false;
        }
        Buffered b;
        b.bytes = payload.size();
        b.change.table = std::move(row->table);
        b.change.operation = row->operation;
        b.change.lsn = lsn;
        b.change.xid = txn_->begin.xid;
        b.change.commit_time = txn_->begin.commit_time;
        b.change.keys = std::move(row->keys);
        if (auto pk = primary_keys_.find(b.change.table); pk != primary_keys_.end()) {
            // The row's primary key, from the image that has it (a delete has only the old
            // one); a column neither image holds keeps what the identity gave.
            const nlohmann::json& from = row->new_image.is_object() ? row->new_image : row->old_image;
            nlohmann::json keys = nlohmann::json::object();
            for (const auto& column : pk->second) {
                if (from.is_object() && from.contains(column)) keys[column] = from[column];
                else if (b.change.keys.contains(column)) keys[column] = b.change.keys[column];
            }
            b.change.keys = std::move(keys);
        }
        b.change.new_image = std::move(row->new_image);
        b.change.old_image = std::move(row->old_image);
        txn_->changes.push_back(std::move(b));
        return true;
    }
    if (auto* commit = std::get_if<pgoutput::Commit>(&message)) {
        if (!txn_) {
            fail(fmt::format("a Commit at {} outside a transaction", format_lsn(lsn)));
            return false;
        }
        auto& changes = txn_->changes;
        std::size_t added = 0;
        for (std::size_t i = 0; i < changes.size(); ++i) {
            auto& c = changes[i].change;
            c.position = ChangePosition{commit->end_lsn, static_cast<std::uint32_t>(i)};
            c.last_in_transaction = i + 1 == changes.size();
            // Read before (this connection's or an earlier one's), or delivered before start().
            if (c.position <= skip_through_) continue;
            buffered_bytes_ += changes[i].bytes;
            buffer_.push_back(std::move(changes[i]));
            ++added;
        }
        if (!changes.empty() && skip_through_ < ChangePosition{commit->end_lsn, static_cast<std::uint32_t>(changes.size() - 1)})
            skip_through_ = ChangePosition{commit->end_lsn, static_cast<std::uint32_t>(changes.size() - 1)};
        last_received_ = std::max(last_received_.value_or(0), commit->end_lsn);
        last_commit_time_ = commit->commit_time;
        txn_.reset();
        if (added > 0) deliver();
        return true;
    }
    if (auto* truncate = std::get_if<pgoutput::Truncate>(&message)) {
        // The publication is made without truncates; one altered to send them gets this.
        spdlog::warn("event source {}: a truncate of {} table(s) at {} is not delivered (row changes only)",
                     config_.name, truncate->tables.size(), format_lsn(lsn));
    }
    // Relation and Type messages only feed the decoder's cache; Origin and Message carry
    // nothing to deliver.
    return true;
}

void PostgresChangeSource::deliver() {
    if (!pending_read_ || buffer_.empty()) return;
    auto [max, handler] = std::move(*pending_read_);
    pending_read_.reset();
    std::vector<RowChange> batch;
    const std::size_t n = std::min(std::max<std::size_t>(max, 1), buffer_.size());
    batch.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        buffered_bytes_ -= buffer_.front().bytes;
        last_delivered_commit_ = std::max(last_delivered_commit_, buffer_.front().change.position.commit_lsn);
        batch.push_back(std::move(buffer_.front().change));
        buffer_.pop_front();
    }
    boost::asio::post(io_, [handler = std::move(handler), batch = std::move(batch)]() mutable {
        handler({}, std::move(batch));
    });
    // Room again: read on (on the next turn, not inside the caller's read()).
    if (paused_ && !full() && !drain_posted_) {
        drain_posted_ = true;
        boost::asio::post(io_, guarded([this, gen = generation_] {
            drain_posted_ = false;
            if (gen == generation_) drain();
        }));
    }
}

void PostgresChangeSource::read(std::size_t max_changes, ReadHandler handler) {
    if (phase_ == Phase::stopped) {
        boost::asio::post(io_, [handler = std::move(handler)] {
            handler(make_error_code(std::errc::operation_canceled), {});
        });
        return;
    }
    if (pending_read_) {
        boost::asio::post(io_, [handler = std::move(handler)] {
            handler(make_error_code(std::errc::operation_in_progress), {});
        });
        return;
    }
    pending_read_.emplace(max_changes, std::move(handler));
    deliver();
}

void PostgresChangeSource::acknowledge(std::uint64_t commit_lsn) {
    if (commit_lsn <= acknowledged_) return;
    acknowledged_ = commit_lsn;
    if (phase_ == Phase::streaming) send_status();
}

std::uint64_t PostgresChangeSource::confirmable() const {
    // Nothing read is waiting for the mapping: the server may forget everything up to its
    // last keepalive too (unrelated tables' WAL).
    if (buffer_.empty() && !txn_ && last_delivered_commit_ <= acknowledged_)
        return std::max(acknowledged_, idle_confirmable_);
    return acknowledged_;
}

void PostgresChangeSource::send_status(bool reply_requested) {
    if (phase_ != Phase::streaming) return;
    const std::uint64_t flush = confirmable();
    char msg[kStatusUpdateSize];
    msg[0] = 'r';
    write_u64(msg + 1, std::max(received_, flush));  // written
    write_u64(msg + 9, flush);                       // flushed: what the slot may forget
    write_u64(msg + 17, flush);                      // applied
    write_u64(msg + 25, static_cast<std::uint64_t>(pgoutput::to_postgres_time(std::chrono::system_clock::now())));
    msg[33] = reply_requested ? 1 : 0;
    if (PQputCopyData(conn_.get(), msg, static_cast<int>(sizeof msg)) != 1) {
        // 0: libpq's buffer is full and could not be sent; it is retried on the next tick.
        if (PQstatus(conn_.get()) == CONNECTION_BAD)
            fail(fmt::format("sending a status update: {}", pg_error_message(conn_.get())));
        return;
    }
    flush_output();
}

void PostgresChangeSource::flush_output() {
    const int r = PQflush(conn_.get());
    if (r < 0) {
        fail(fmt::format("writing to PostgreSQL: {}", pg_error_message(conn_.get())));
        return;
    }
    if (r == 1) wait_socket(true);
    // Sending may have read input into libpq's buffer (it reads when a write would block),
    // and a socket wait would not see that: handle it on the next turn.
    if (phase_ == Phase::streaming && !paused_ && !drain_posted_) {
        drain_posted_ = true;
        boost::asio::post(io_, guarded([this, gen = generation_] {
            drain_posted_ = false;
            if (gen == generation_) drain();
        }));
    }
}

void PostgresChangeSource::schedule_status() {
    status_timer_.expires_after(postgres_source::kStatusInterval);
    status_timer_.async_wait(guarded([this, gen = generation_](const boost::system::error_code& ec) {
        if (ec || gen != generation_ || phase_ != Phase::streaming) return;
        if (!paused_ && std::chrono::steady_clock::now() - last_message_ > postgres_source::kServerSilenceLimit) {
            fail(fmt::format("nothing from PostgreSQL for {} s",
                             std::chrono::duration_cast<std::chrono::seconds>(postgres_source::kServerSilenceLimit)
                                 .count()));
            return;
        }
        send_status();
        schedule_status();
    }));
}

void PostgresChangeSource::disconnect() {
    ++generation_;
    boost::system::error_code ignored;
    if (socket_) {
        socket_->cancel(ignored);
        socket_->release();
        socket_.reset();
    }
    waiting_read_ = waiting_write_ = false;
    conn_.reset();
    connect_timer_.cancel();
    status_timer_.cancel();
    connected_ = false;
    paused_ = false;
    // A transaction half read is sent again whole after the reconnection.
    txn_.reset();
}

void PostgresChangeSource::fail(std::string reason) {
    if (phase_ == Phase::stopped) return;
    disconnect();
    last_error_ = std::move(reason);
    phase_ = Phase::waiting;
    spdlog::warn("event source {}: {}; connecting again in {} ms", config_.name, last_error_, retry_delay_.count());
    retry_timer_.expires_after(retry_delay_);
    retry_delay_ = std::min<std::chrono::milliseconds>(retry_delay_ * 2, postgres_source::kMaxRetryDelay);
    retry_timer_.async_wait(guarded([this](const boost::system::error_code& ec) {
        if (ec || phase_ != Phase::waiting) return;
        connect();
    }));
}

void PostgresChangeSource::stop() {
    if (phase_ == Phase::stopped) return;
    const bool was_running = phase_ != Phase::idle;
    if (phase_ == Phase::streaming) {
        // A last word of what was acknowledged, so a restart resends as little as possible.
        send_status();
        if (conn_) PQflush(conn_.get());
    }
    disconnect();
    retry_timer_.cancel();
    phase_ = Phase::stopped;
    if (pending_read_) {
        auto handler = std::move(pending_read_->second);
        pending_read_.reset();
        boost::asio::post(io_, [handler = std::move(handler)] {
            handler(make_error_code(std::errc::operation_canceled), {});
        });
    }
    if (was_running) spdlog::info("event source {}: stopped reading slot {}", config_.name, config_.slot);
}

ChangeSourceStatus PostgresChangeSource::status() const {
    ChangeSourceStatus s;
    s.connected = connected_;
    s.last_error = last_error_;
    s.server_wal_end = server_wal_end_;
    s.last_received = last_received_;
    s.last_commit_time = last_commit_time_;
    if (const std::uint64_t c = confirmable(); c > 0) s.confirmed = c;
    return s;
}

}  // namespace funcd
