#pragma once
// The ChangeSource of a PostgreSQL table set: streams the mapping's logical replication slot
// (START_REPLICATION ... LOGICAL with pgoutput, protocol version 1) over one libpq
// replication connection, driven without blocking from the daemon's loop.
//
// - Changes are buffered transaction by transaction: pgoutput gives a transaction's end
//   LSN, its changes' commit position, only at its Commit, so a transaction is read to its
//   end before any of its changes can be read by the mapping.
// - Backpressure: once the buffer holds EventSourceLimits' worth and no transaction is half
//   read, the connection is not read any further (its TCP window fills, the server waits
//   and keeps the WAL). Status updates still go out, so the server does not time the
//   connection out.
// - Acknowledged positions go to the server as the slot's flush position (what it may
//   forget). While everything read was acknowledged, the server's keepalive position is
//   confirmed too, so the WAL of unrelated tables is not kept for a quiet mapping.
// - Every failure (the server restarting, the network, a slot held by another stream)
//   ends the connection, goes to status().last_error, and the source connects again after
//   an exponential backoff; the slot resends what was not acknowledged and the source
//   skips what it had read already.
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "funcd/event_sources/change_source.hpp"
#include "funcd/event_sources/event_source_limits.hpp"
#include "funcd/event_sources/pg_connection.hpp"
#include "funcd/event_sources/pgoutput_decoder.hpp"

namespace funcd {

struct PostgresSourceConfig {
    std::string name;         // for logs: the mapping's id
    std::string conninfo;     // libpq connection string; never logged
    std::string slot;         // a logical slot made with pgoutput (postgres_setup.hpp)
    std::string publication;  // the publication of the mapping's tables
};

// Tuning constants, named so tests and docs can refer to them.
namespace postgres_source {
// Status updates are sent at least this often. PostgreSQL ends a replication connection
// that is silent for wal_sender_timeout (60 s by default); pg_recvlogical's default
// --status-interval is the same 10 s.
inline constexpr auto kStatusInterval = std::chrono::seconds(10);
// Backoff between connection attempts: doubled after each failure up to the maximum,
// back to the first after a stream starts. A restart of PostgreSQL takes seconds; the
// maximum keeps a long outage from costing more than a connection attempt every half minute.
inline constexpr auto kFirstRetryDelay = std::chrono::milliseconds(200);
inline constexpr auto kMaxRetryDelay = std::chrono::seconds(30);
// A connection attempt (TCP, TLS, authentication, START_REPLICATION) that takes longer is
// given up. libpq's connect_timeout does not apply to a connection it does not wait for.
inline constexpr auto kConnectTimeout = std::chrono::seconds(15);
// A server that sends nothing for this long while being read is taken for gone (a network
// partition leaves no error). The server sends keepalives after half of its
// wal_sender_timeout when idle, so with the default 60 s it is never this quiet.
inline constexpr auto kServerSilenceLimit = std::chrono::seconds(120);
// Messages handled in one turn of the loop before the rest is left for the next, so a
// stream of many small changes does not hold the loop.
inline constexpr int kMessagesPerTurn = 512;
}  // namespace postgres_source

class PostgresChangeSource final : public ChangeSource {
public:
    // Throws std::invalid_argument when the slot or publication name is not one
    // postgres_source_names() makes (a-z, 0-9, _), as they are written into a replication
    // command.
    PostgresChangeSource(boost::asio::io_context& io, PostgresSourceConfig config, EventSourceLimits limits);
    ~PostgresChangeSource() override;

    void start(ChangePosition after) override;
    void read(std::size_t max_changes, ReadHandler handler) override;
    void acknowledge(std::uint64_t commit_lsn) override;
    ChangeSourceStatus status() const override;
    void stop() override;

    // The buffer's fill, and whether it stopped the connection from being read.
    std::size_t buffered_changes() const { return buffer_.size(); }
    std::size_t buffered_bytes() const { return buffered_bytes_; }
    bool reading_paused() const { return paused_; }

private:
    struct Buffered {
        RowChange change;
        std::size_t bytes = 0;
    };
    struct OpenTransaction {
        pgoutput::Begin begin;
        std::vector<Buffered> changes;
        std::size_t bytes = 0;  // of its changes on the wire, bounded by max_transaction_bytes
    };
    enum class Phase { idle, connecting, keys, starting, streaming, waiting, stopped };

    void connect();
    void poll_connect();
    void send_key_query();
    void on_key_result();
    void send_start();
    void on_start_result();
    void wait_socket(bool for_write);
    void on_readable();
    void drain();
    bool handle_copy(const char* data, std::size_t size);
    bool handle_message(std::uint64_t lsn, std::string_view payload);
    void send_status(bool reply_requested = false);
    void flush_output();
    void fail(std::string reason);
    void disconnect();
    void schedule_status();
    void deliver();
    bool full() const;
    std::uint64_t confirmable() const;

    template <class F>
    auto guarded(F f);

    boost::asio::io_context& io_;
    PostgresSourceConfig config_;
    EventSourceLimits limits_;
    std::shared_ptr<char> alive_ = std::make_shared<char>();

    Phase phase_ = Phase::idle;
    PgConnection conn_;
    std::optional<boost::asio::posix::stream_descriptor> socket_;
    std::uint64_t generation_ = 0;  // bumped per connection; stale callbacks compare it
    bool waiting_read_ = false;
    bool waiting_write_ = false;
    bool drain_posted_ = false;
    int connect_poll_ = 0;  // the last PostgresPollingStatusType
    boost::asio::steady_timer retry_timer_;
    boost::asio::steady_timer connect_timer_;
    boost::asio::steady_timer status_timer_;
    std::chrono::milliseconds retry_delay_ = postgres_source::kFirstRetryDelay;
    std::chrono::steady_clock::time_point last_message_;

    pgoutput::Decoder decoder_;
    std::optional<OpenTransaction> txn_;
    // Each published table's primary key columns ("schema.name" -> names), read when a
    // connection starts: under REPLICA IDENTITY FULL pgoutput marks every column as part of
    // the identity, and a record's Keys are meant to be the row's key.
    std::map<std::string, std::vector<std::string>> primary_keys_;
    std::deque<Buffered> buffer_;
    std::size_t buffered_bytes_ = 0;
    bool paused_ = false;
    // A stream ended at a transaction over max_transaction_bytes: every later stream meets
    // it again (the limit does not change while the source lives), so starting one no longer
    // resets the backoff, which grows to its most between attempts.
    bool oversized_ = false;
    ChangePosition skip_through_;  // changes at or before it were read already
    std::optional<std::pair<std::size_t, ReadHandler>> pending_read_;

    std::uint64_t acknowledged_ = 0;
    std::uint64_t last_delivered_commit_ = 0;
    std::uint64_t idle_confirmable_ = 0;  // a keepalive's position, received between transactions
    std::uint64_t received_ = 0;          // the newest WAL position received

    bool connected_ = false;
    std::string last_error_;
    std::optional<std::uint64_t> server_wal_end_;
    std::optional<std::uint64_t> last_received_;
    std::optional<std::chrono::system_clock::time_point> last_commit_time_;
};

}  // namespace funcd
