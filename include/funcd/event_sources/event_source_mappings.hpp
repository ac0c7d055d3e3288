#pragma once
// Every event source mapping of the daemon: its settings (committed to the MappingStore
// before they take effect), its source (from the ChangeSourceFactory) and its runner.
// Both APIs (/v1 and Lambda's) create, change and delete mappings through it. Runs on the
// loop; the store, the leases and the factory's provisioning are reached through the
// blocking pool.
//
// Nodes sharing a database (given a LeaseStore) know every mapping, but run each on one node
// at a time: the one holding its lease (mapping_lease_name), renewed every
// kLeaseRenewal. A node that cannot renew stops the runner before the lease could
// expire; a node whose lease another took (its own expired) stops at once. When the node
// running a mapping dies, another takes the lease once it expires and resumes after the
// stored checkpoint, which only the lease's holder can move (PostgresMappingStore).
// Mappings other nodes create, change and delete are read again at reload().
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/common/local_changes.hpp"
#include "funcd/event_sources/change_source_factory.hpp"
#include "funcd/event_sources/event_source_limits.hpp"
#include "funcd/event_sources/mapping_runner.hpp"
#include "funcd/event_sources/mapping_store.hpp"
#include "funcd/state/lease_store.hpp"

namespace funcd {

// A mapping as the APIs show it.
struct MappingView {
    MappingConfig config;
    // Lambda's states: Creating (its source is being provisioned), Enabled, Disabled;
    // and Failing: enabled, but its source is down or its batch in flight has failed.
    std::string state;
    MappingRunnerStatus status;
    // A disabled mapping's slot still holds the server's WAL from its checkpoint on, which
    // the server cannot recycle while nothing reads it: how much, as last read (nullopt
    // until read, or when the server could not be asked).
    std::optional<std::uint64_t> retained_wal_bytes;
    // Nodes sharing a database: the node running it (this one's id, or the lease holder's
    // as last seen; unset while nobody does).
    std::optional<std::string> node;
};

// How often the slots of disabled mappings are looked at and, when they hold WAL, logged as
// a warning: often enough to see a disk filling up over hours, rarely enough that a server
// sees one query a minute per disabled mapping.
inline constexpr std::chrono::seconds kDisabledSlotCheckInterval{60};
// A GET of a disabled mapping reads its slot afresh when what it shows is older than this.
inline constexpr std::chrono::seconds kRetainedFreshness{5};
// A node that cannot renew stops a runner this long before its lease would expire, measured
// from before the last renewal was sent: room for the round trip and the runner's stop.
inline constexpr std::chrono::seconds kMappingLeaseMargin{3};

struct EventSourceMappingsOptions {
    std::string region;
    std::string account_id;
    EventSourceLimits limits;
    DeliveryTiming timing;
    std::string node_id;  // the lease holder, with a LeaseStore
    std::chrono::milliseconds lease_renew = kLeaseRenewal;  // tests shorten it
};

class EventSourceMappings {
public:
    // `leases`: null on a single host, where every mapping runs here.
    EventSourceMappings(boost::asio::io_context& io, boost::asio::thread_pool& blocking, MappingStore& store,
                        ChangeSourceFactory& factory, MappingDelivery& delivery, EventSourceMappingsOptions options,
                        LeaseStore* leases = nullptr);

    // Loads the stored mappings and starts the enabled ones after their checkpoints (with
    // leases: those whose lease this node takes).
    void start();
    // Shutdown: every runner stops (checkpoints are already stored), and the leases held are
    // given up, so that other nodes take the mappings over at once.
    void stop();
    // Reads the mappings again: another node may have created, changed or deleted some. Off
    // the loop (it reads the store; the daemon calls it with the triggers' reload). Nothing is
    // read while a change of this node's is under way, and what is read is applied (on the
    // loop) only if none began since: it would undo it. The next reload reads that change.
    void reload();

    // `error`: null, or the exception (an ApiError) the change failed with.
    using Done = std::function<void(std::exception_ptr error, std::optional<MappingView> view, bool created)>;
    // Creates the mapping (an empty uuid: a new one is given) or replaces the one with its
    // uuid, or else its function and name. Checks the function's limit of mappings and what
    // an update may not change (type, tables, starting position). A new mapping's source is
    // provisioned before it is stored.
    void put(MappingConfig c, Done done);
    void remove(const std::string& uuid, std::function<void(std::exception_ptr)> done);
    // After the function was deleted: its mappings stop and go, their sources deprovisioned.
    // `drop_stored`: false when the deletion came through another node, which drops the
    // stored mappings and their sources (this node only stops its runners).
    void function_deleted(const std::string& function, bool drop_stored = true);

    std::optional<MappingView> get(const std::string& uuid) const;
    std::optional<MappingView> find(const std::string& function, const std::string& name) const;
    // Every mapping (of `function`, when given), by function then name.
    std::vector<MappingView> list(const std::optional<std::string>& function = std::nullopt) const;
    // Reads what a disabled mapping's slot retains when that is older than kRetainedFreshness,
    // then calls `then` on the loop (at once when there is nothing to read).
    void refresh_retained(const std::string& uuid, std::function<void()> then);

    // arn:aws:lambda:<region>:<account>:event-source-mapping:<uuid>
    std::string arn(const std::string& uuid) const;
    const std::string& region() const { return options_.region; }
    const std::string& account_id() const { return options_.account_id; }

private:
    // What a disabled mapping's slot retains, as last read.
    struct RetainedWal {
        std::optional<std::uint64_t> bytes;
        std::chrono::steady_clock::time_point read{};    // when (never: the epoch)
        std::chrono::steady_clock::time_point logged{};  // when last said in the log
        bool reading = false;
        std::vector<std::function<void()>> waiting;  // GETs waiting for the read under way
    };
    struct Entry {
        MappingConfig config;
        std::shared_ptr<MappingRunner> runner;  // null: disabled, not this node's, or its source could not be made
        std::optional<ChangePosition> checkpoint;  // as stored when the runner was made (or last read)
        std::string error;  // why the enabled mapping has no runner
        RetainedWal retained;  // while disabled
        // With leases: whether this node holds the mapping's lease, until when at the latest
        // (unrenewed), and who held it when this node could not take it.
        bool owned = false;
        std::chrono::steady_clock::time_point owned_until{};
        std::string holder;
    };
    // What a lease round found for one mapping.
    struct LeaseResult {
        std::string uuid;
        bool reached = false;  // the lease store answered
        bool held = false;     // this node holds the lease now
        std::string holder;    // when not: who does ("" nobody)
    };

    // Starts the runner of an enabled mapping that this node may run.
    void run(Entry& e);
    void halt(Entry& e);
    // Applies the mappings read from the store (reload).
    void apply(std::vector<StoredMapping> stored);
    // Takes or renews the leases of the enabled mappings; every options_.lease_renew.
    void tend_leases();
    void apply_leases(std::vector<LeaseResult> results, std::vector<StoredMapping> fresh,
                      std::chrono::steady_clock::time_point sent);
    // The lease of `uuid` is given up (on the blocking pool).
    void release_lease(const std::string& uuid);
    // Reads what the disabled mapping `uuid`'s slot retains, on the blocking pool, and logs
    // it when it holds any (at most once per kDisabledSlotCheckInterval). Then `then`, on the loop.
    void read_retained(const std::string& uuid, std::function<void()> then);
    void check_disabled_slots();
    // The entry goes: what waits for its read is answered now (it finds the mapping gone).
    void release_waiting(Entry& e);
    MappingView view(const Entry& e) const;
    const Entry* entry_named(const std::string& function, const std::string& name) const;

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    MappingStore& store_;
    ChangeSourceFactory& factory_;
    MappingDelivery& delivery_;
    EventSourceMappingsOptions options_;
    std::map<std::string, Entry> entries_;  // by uuid
    // Mappings being created, changed or deleted (function, name): one change at a time.
    std::set<std::pair<std::string, std::string>> changing_;
    boost::asio::steady_timer slot_check_;
    bool stopped_ = false;
    LeaseStore* leases_;
    boost::asio::steady_timer lease_timer_;
    bool tending_ = false;
    // Changes of this node's (put, remove, function_deleted), each done once applied on the loop.
    LocalChanges local_changes_;
};

}  // namespace funcd

namespace funcd {

// A mapping as /v1 shows it: its settings (the connection redacted) and its state.
nlohmann::json to_json(const MappingView& v, const std::string& arn);

}  // namespace funcd
