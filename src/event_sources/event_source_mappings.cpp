#include "funcd/event_sources/event_source_mappings.hpp"

#include <algorithm>
#include <tuple>
#include <utility>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "funcd/common/api_error.hpp"
#include "funcd/common/ids.hpp"

namespace funcd {

EventSourceMappings::EventSourceMappings(boost::asio::io_context& io, boost::asio::thread_pool& blocking,
                                         MappingStore& store, ChangeSourceFactory& factory,
                                         MappingDelivery& delivery, EventSourceMappingsOptions options,
                                         LeaseStore* leases)
    : io_(io),
      blocking_(blocking),
      store_(store),
      factory_(factory),
      delivery_(delivery),
      options_(std::move(options)),
      slot_check_(io),
      leases_(leases),
      lease_timer_(io) {}

std::string EventSourceMappings::arn(const std::string& uuid) const {
    return "arn:aws:lambda:" + options_.region + ":" + options_.account_id + ":event-source-mapping:" + uuid;
}

void EventSourceMappings::start() {
    std::size_t running = 0;
    for (auto& m : store_.list()) {
        Entry& e = entries_[m.config.uuid];
        e.config = std::move(m.config);
        e.checkpoint = m.checkpoint;
        run(e);
        if (e.runner) ++running;
    }
    if (leases_) {
        spdlog::info("event sources: {} mappings loaded; each runs on the node that holds its lease", entries_.size());
        tend_leases();
    } else {
        spdlog::info("event sources: {} mappings loaded, {} running", entries_.size(), running);
    }
    check_disabled_slots();
}

void EventSourceMappings::stop() {
    stopped_ = true;
    slot_check_.cancel();
    lease_timer_.cancel();
    for (auto& [uuid, e] : entries_) {
        halt(e);
        if (e.owned) release_lease(uuid);
        e.owned = false;
    }
}

void EventSourceMappings::release_lease(const std::string& uuid) {
    if (!leases_) return;
    boost::asio::post(blocking_, [this, uuid] {
        try {
            leases_->release(mapping_lease_name(uuid), options_.node_id);
        } catch (const std::exception& ex) {
            // It expires unrenewed instead.
            spdlog::warn("event source: mapping {}: cannot give its lease up: {}", uuid, ex.what());
        }
    });
}

void EventSourceMappings::reload() {
    const std::optional<std::uint64_t> mark = local_changes_.quiet();
    if (!mark) return;
    std::vector<StoredMapping> stored = store_.list();
    boost::asio::post(io_, [this, mark = *mark, stored = std::move(stored)]() mutable {
        if (!stopped_ && local_changes_.none_since(mark)) apply(std::move(stored));
    });
}

void EventSourceMappings::apply(std::vector<StoredMapping> stored) {
    std::set<std::string> seen;
    for (auto& m : stored) {
        seen.insert(m.config.uuid);
        auto [it, added] = entries_.try_emplace(m.config.uuid);
        Entry& e = it->second;
        if (added) {
            e.config = std::move(m.config);
            e.checkpoint = m.checkpoint;
            spdlog::info("event source: mapping={} function={} made on another node ({})", e.config.name,
                         e.config.function, e.config.enabled ? "enabled" : "disabled");
            run(e);
            if (!e.config.enabled) read_retained(e.config.uuid, [] {});
            continue;
        }
        // Where the node running it got to: where this one resumes should it take it over.
        if (!e.runner) e.checkpoint = m.checkpoint;
        if (to_stored_json(e.config) == to_stored_json(m.config)) continue;
        halt(e);
        e.config = std::move(m.config);
        spdlog::info("event source: mapping={} function={} changed on another node ({})", e.config.name,
                     e.config.function, e.config.enabled ? "enabled" : "disabled");
        if (e.config.enabled) {
            run(e);
        } else {
            if (e.owned) release_lease(e.config.uuid);
            e.owned = false;
            // What its slot retained before belongs to an earlier time (GETs waiting for a
            // read under way get that one).
            e.retained.bytes.reset();
            e.retained.read = {};
            e.retained.logged = {};
            if (!e.retained.reading) read_retained(e.config.uuid, [] {});
        }
    }
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (seen.contains(it->first)) {
            ++it;
            continue;
        }
        // Deleted through another node, which drops its source once this runner lets go of it.
        spdlog::info("event source: mapping={} function={} deleted on another node", it->second.config.name,
                     it->second.config.function);
        halt(it->second);
        release_waiting(it->second);
        it = entries_.erase(it);
    }
}

void EventSourceMappings::tend_leases() {
    if (stopped_) return;
    const auto now = std::chrono::steady_clock::now();
    // A runner whose lease may have expired unrenewed stops, whatever the store answers.
    for (auto& [uuid, e] : entries_)
        if (e.owned && now >= e.owned_until) {
            if (e.runner)
                spdlog::warn("event source: mapping={} function={} stopped: its lease could not be renewed in time, "
                             "so another node may run it", e.config.name, e.config.function);
            halt(e);
            e.owned = false;
        }
    if (!tending_) {
        std::vector<std::pair<std::string, bool>> wanted;  // (uuid, owned now)
        for (const auto& [uuid, e] : entries_)
            if (e.config.enabled && !changing_.contains({e.config.function, e.config.name}))
                wanted.emplace_back(uuid, e.owned);
        if (!wanted.empty()) {
            tending_ = true;
            boost::asio::post(blocking_, [this, wanted = std::move(wanted), sent = now] {
                std::vector<LeaseResult> results;
                bool taken = false;
                for (const auto& [uuid, owned] : wanted) {
                    LeaseResult r{uuid};
                    try {
                        const std::string name = mapping_lease_name(uuid);
                        r.held = leases_->acquire(name, options_.node_id, kLeaseTerm);
                        r.holder = r.held ? options_.node_id : leases_->holder(name).value_or("");
                        r.reached = true;
                        taken = taken || (r.held && !owned);
                    } catch (const std::exception& ex) {
                        spdlog::warn("event source: mapping {}: cannot take or renew its lease: {}", uuid, ex.what());
                    }
                    results.push_back(std::move(r));
                }
                // A mapping taken over resumes where the node before got to: read it now.
                std::vector<StoredMapping> fresh;
                if (taken) {
                    try {
                        fresh = store_.list();
                    } catch (const std::exception& ex) {
                        spdlog::warn("event sources: cannot read the checkpoints of mappings taken over: {}", ex.what());
                        for (auto& r : results) r.reached = r.reached && !r.held;  // not taken this round
                    }
                }
                boost::asio::post(io_, [this, results = std::move(results), fresh = std::move(fresh), sent]() mutable {
                    tending_ = false;
                    apply_leases(std::move(results), std::move(fresh), sent);
                });
            });
        }
    }
    lease_timer_.expires_after(options_.lease_renew);
    lease_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) tend_leases();
    });
}

void EventSourceMappings::apply_leases(std::vector<LeaseResult> results, std::vector<StoredMapping> fresh,
                                       std::chrono::steady_clock::time_point sent) {
    if (stopped_) {
        for (const auto& r : results)
            if (r.held) release_lease(r.uuid);
        return;
    }
    for (auto& r : results) {
        auto it = entries_.find(r.uuid);
        const bool wanted = it != entries_.end() && it->second.config.enabled &&
                            !changing_.contains({it->second.config.function, it->second.config.name});
        if (!wanted) {
            // Deleted, disabled or being changed meanwhile: the change decides.
            if (r.held && (it == entries_.end() || !it->second.config.enabled)) release_lease(r.uuid);
            continue;
        }
        Entry& e = it->second;
        if (!r.reached) continue;  // an owner keeps running until owned_until
        if (!r.held) {
            e.holder = r.holder;
            if (e.owned || e.runner) {
                spdlog::warn("event source: mapping={} function={} stopped: node '{}' holds its lease now",
                             e.config.name, e.config.function, r.holder);
                halt(e);
            }
            e.owned = false;
            continue;
        }
        e.owned_until = sent + kLeaseTerm - kMappingLeaseMargin;
        e.holder = options_.node_id;
        if (e.owned) continue;
        e.owned = true;
        for (const auto& m : fresh)
            if (m.config.uuid == r.uuid) e.checkpoint = m.checkpoint;
        spdlog::info("event source: mapping={} function={} runs on this node (lease taken), from checkpoint {}",
                     e.config.name, e.config.function,
                     e.checkpoint ? format_lsn(e.checkpoint->commit_lsn) + "/" + std::to_string(e.checkpoint->ordinal)
                                  : std::string("none"));
        run(e);
    }
}

void EventSourceMappings::check_disabled_slots() {
    for (const auto& [uuid, e] : entries_)
        if (!e.config.enabled && !e.retained.reading) read_retained(uuid, [] {});
    slot_check_.expires_after(kDisabledSlotCheckInterval);
    slot_check_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec && !stopped_) check_disabled_slots();
    });
}

void EventSourceMappings::refresh_retained(const std::string& uuid, std::function<void()> then) {
    auto it = entries_.find(uuid);
    if (it == entries_.end() || it->second.config.enabled) return boost::asio::post(io_, std::move(then));
    Entry& e = it->second;
    if (e.retained.reading) return e.retained.waiting.push_back(std::move(then));  // answered with that read
    if (std::chrono::steady_clock::now() - e.retained.read < kRetainedFreshness)
        return boost::asio::post(io_, std::move(then));
    read_retained(uuid, std::move(then));
}

void EventSourceMappings::read_retained(const std::string& uuid, std::function<void()> then) {
    Entry& e = entries_.at(uuid);
    e.retained.reading = true;
    boost::asio::post(blocking_, [this, uuid, c = e.config, then = std::move(then)]() mutable {
        std::string error;
        // Initialised from a call rather than assigned in a try block: GCC 12.2 at -O2
        // (scalar replacement of aggregates) leaves `std::optional<integer> x; try { x = f(); }`
        // reading as engaged, with garbage, when f throws.
        const std::optional<std::uint64_t> retained = [&]() -> std::optional<std::uint64_t> {
            try {
                return factory_.retained_bytes(c);
            } catch (const std::exception& ex) {
                error = ex.what();
                return std::nullopt;
            }
        }();
        boost::asio::post(io_, [this, uuid, retained, error, then = std::move(then)] {
            auto it = entries_.find(uuid);
            if (it == entries_.end()) return then();
            Entry& e = it->second;
            const auto now = std::chrono::steady_clock::now();
            e.retained.reading = false;
            auto waiting = std::exchange(e.retained.waiting, {});
            e.retained.read = now;
            e.retained.bytes = retained;
            // Said in the log once per check interval, however often the API asks.
            if (!e.config.enabled && (!error.empty() || retained.value_or(0) > 0) &&
                now - e.retained.logged >= kDisabledSlotCheckInterval) {
                e.retained.logged = now;
                if (!error.empty())
                    spdlog::warn("event source: mapping={} function={} is disabled; what its slot retains cannot be "
                                 "read: {}", e.config.name, e.config.function, error);
                else
                    spdlog::warn("event source: mapping={} function={} is disabled, and its replication slot holds "
                                 "{} bytes of WAL that the server cannot recycle until the mapping is enabled or "
                                 "deleted (max_slot_wal_keep_size bounds it: docs/event-sources.md)",
                                 e.config.name, e.config.function, *retained);
            }
            then();
            for (auto& w : waiting) w();
        });
    });
}

void EventSourceMappings::release_waiting(Entry& e) {
    for (auto& w : std::exchange(e.retained.waiting, {})) boost::asio::post(io_, std::move(w));
}

void EventSourceMappings::run(Entry& e) {
    e.error.clear();
    if (!e.config.enabled || stopped_ || e.runner) return;
    if (leases_ && !e.owned) return;  // another node's, or nobody's yet
    std::unique_ptr<ChangeSource> source;
    try {
        source = factory_.make(e.config);
    } catch (const std::exception& ex) {
        e.error = std::string("its change source cannot be made: ") + ex.what();
        spdlog::error("event source: mapping={} function={} {}", e.config.name, e.config.function, e.error);
        return;
    }
    e.runner = std::make_shared<MappingRunner>(io_, e.config, std::move(source), delivery_,
                                               StreamEventContext{options_.region, arn(e.config.uuid)},
                                               options_.limits, options_.timing, e.checkpoint);
    e.runner->start();
}

void EventSourceMappings::halt(Entry& e) {
    if (!e.runner) return;
    // Where it got to, for the runner made next (the store has the same).
    if (auto c = e.runner->status().checkpoint) e.checkpoint = c;
    e.runner->stop();
    e.runner.reset();
}

const EventSourceMappings::Entry* EventSourceMappings::entry_named(const std::string& function,
                                                                   const std::string& name) const {
    for (const auto& [uuid, e] : entries_)
        if (e.config.function == function && e.config.name == name) return &e;
    return nullptr;
}

void EventSourceMappings::put(MappingConfig c, Done done) {
    try {
        const Entry* existing = nullptr;
        if (!c.uuid.empty()) {
            auto it = entries_.find(c.uuid);
            if (it != entries_.end()) existing = &it->second;
        }
        if (!existing) existing = entry_named(c.function, c.name);
        if (existing) {
            const MappingConfig& old = existing->config;
            if (old.function != c.function)
                throw ApiError::bad_parameter("a mapping cannot move to another function; delete it and create it again");
            if (old.type != c.type || old.tables != c.tables)
                throw ApiError::bad_parameter("type and tables of a mapping cannot change (its publication and slot "
                                              "are made for them); delete the mapping and create it again");
            if (old.starting_position != c.starting_position)
                throw ApiError::bad_parameter("starting_position applies when a mapping is created; it cannot change");
            c.uuid = old.uuid;
            c.name = old.name;
        } else {
            std::size_t of_function = 0;
            for (const auto& [uuid, e] : entries_) of_function += e.config.function == c.function ? 1 : 0;
            if (of_function >= options_.limits.max_mappings_per_function)
                throw ApiError(400, "ResourceLimitExceededException",
                               "function '" + c.function + "' has " + std::to_string(of_function) +
                                   " event source mappings, its limit (event_sources.max_mappings_per_function)");
            if (c.uuid.empty()) c.uuid = new_uuid();
        }
        const std::pair<std::string, std::string> key{c.function, c.name};
        if (changing_.contains(key))
            throw ApiError::conflict("mapping '" + c.name + "' of function '" + c.function +
                                     "' is being changed; retry when that is done");
        c.last_modified = std::chrono::system_clock::now();
        const bool created = existing == nullptr;
        const bool owned = existing && existing->owned;
        changing_.insert(key);
        local_changes_.begin();
        boost::asio::post(blocking_, [this, c, created, owned, key, done = std::move(done)]() mutable {
            std::exception_ptr error;
            // With leases: whether this node runs the mapping from now on, and where from
            // when it takes it over.
            bool held = false;
            std::optional<ChangePosition> resume;
            try {
                if (created) factory_.provision(c);
                try {
                    store_.put(c);
                } catch (...) {
                    if (created) {
                        try {
                            factory_.deprovision(c);
                        } catch (const std::exception& ex) {
                            spdlog::error("event source: mapping={} could not be stored, and its source not "
                                          "deprovisioned: {}", c.name, ex.what());
                        }
                    }
                    throw;
                }
            } catch (...) {
                error = std::current_exception();
            }
            if (!error && leases_ && c.enabled) {
                // Stored: the change stands whatever the leases say (the mapping then starts on
                // whichever node takes its lease next).
                try {
                    held = leases_->acquire(mapping_lease_name(c.uuid), options_.node_id, kLeaseTerm);
                    if (held && !owned && !created)
                        for (const auto& m : store_.list())
                            if (m.config.uuid == c.uuid) resume = m.checkpoint;
                } catch (const std::exception& ex) {
                    spdlog::warn("event source: mapping={} stored; its lease cannot be taken now: {}", c.name, ex.what());
                    held = false;
                }
            } else if (!error && leases_ && owned) {
                try {
                    leases_->release(mapping_lease_name(c.uuid), options_.node_id);
                } catch (const std::exception& ex) {
                    spdlog::warn("event source: mapping={} disabled; cannot give its lease up: {}", c.name, ex.what());
                }
            }
            const auto sent = std::chrono::steady_clock::now();
            boost::asio::post(io_, [this, c = std::move(c), created, key, error, held, resume, sent,
                                    done = std::move(done)]() mutable {
                changing_.erase(key);
                local_changes_.done();
                if (error) return done(error, std::nullopt, false);
                Entry& e = entries_[c.uuid];
                halt(e);
                e.config = std::move(c);
                if (leases_) {
                    if (held && !e.owned && !created) e.checkpoint = resume;
                    e.owned = held;
                    // Measured from after the acquire returned: the renewal rounds correct it.
                    if (held) {
                        e.owned_until = sent + kLeaseTerm - kMappingLeaseMargin;
                        e.holder = options_.node_id;
                    }
                }
                run(e);
                spdlog::info("event source: mapping={} function={} {} ({})", e.config.name, e.config.function,
                             created ? "created" : "changed", e.config.enabled ? "enabled" : "disabled");
                // What a slot retained before belongs to an earlier time: read afresh (the
                // answer does not wait for a server that may be down).
                e.retained.bytes.reset();
                e.retained.read = {};
                e.retained.logged = {};
                if (!e.config.enabled && !e.retained.reading) read_retained(e.config.uuid, [] {});
                done(nullptr, view(e), created);
            });
        });
    } catch (...) {
        boost::asio::post(io_, [done = std::move(done), error = std::current_exception()] {
            done(error, std::nullopt, false);
        });
    }
}

void EventSourceMappings::remove(const std::string& uuid, std::function<void(std::exception_ptr)> done) {
    auto it = entries_.find(uuid);
    if (it == entries_.end()) {
        boost::asio::post(io_, [done = std::move(done), uuid] {
            done(std::make_exception_ptr(ApiError::not_found("event source mapping " + uuid + " does not exist")));
        });
        return;
    }
    const std::pair<std::string, std::string> key{it->second.config.function, it->second.config.name};
    if (changing_.contains(key)) {
        boost::asio::post(io_, [done = std::move(done), key] {
            done(std::make_exception_ptr(ApiError::conflict("mapping '" + key.second + "' is being changed; retry")));
        });
        return;
    }
    halt(it->second);
    release_waiting(it->second);
    MappingConfig c = it->second.config;
    entries_.erase(it);
    changing_.insert(key);
    local_changes_.begin();
    boost::asio::post(blocking_, [this, c, key, done = std::move(done)] {
        std::exception_ptr error;
        try {
            store_.remove(c.uuid);
        } catch (...) {
            error = std::current_exception();
        }
        if (!error) {
            try {
                factory_.deprovision(c);
            } catch (const std::exception& ex) {
                spdlog::error("event source: mapping={} function={} deleted, but its source could not be "
                              "deprovisioned (drop its replication slot by hand): {}", c.name, c.function, ex.what());
            }
        }
        boost::asio::post(io_, [this, c, key, error, done] {
            changing_.erase(key);
            local_changes_.done();
            if (error) {
                // Not deleted after all: it runs on.
                Entry& e = entries_[c.uuid];
                e.config = c;
                run(e);
            } else {
                spdlog::info("event source: mapping={} function={} deleted", c.name, c.function);
            }
            done(error);
        });
    });
}

void EventSourceMappings::function_deleted(const std::string& function, bool drop_stored) {
    for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->second.config.function != function) {
            ++it;
            continue;
        }
        halt(it->second);
        release_waiting(it->second);
        it = entries_.erase(it);
    }
    if (!drop_stored) return;
    local_changes_.begin();
    boost::asio::post(blocking_, [this, function] {
        std::vector<MappingConfig> dropped;
        try {
            dropped = store_.drop_function(function);
        } catch (const std::exception& ex) {
            spdlog::error("event sources: cannot drop the mappings of deleted function={}: {}", function, ex.what());
            boost::asio::post(io_, [this] { local_changes_.done(); });
            return;
        }
        boost::asio::post(io_, [this] { local_changes_.done(); });
        for (const auto& c : dropped) {
            try {
                factory_.deprovision(c);
            } catch (const std::exception& ex) {
                spdlog::error("event source: mapping={} of deleted function={}: its source could not be "
                              "deprovisioned (drop its replication slot by hand): {}", c.name, function, ex.what());
            }
        }
    });
}

MappingView EventSourceMappings::view(const Entry& e) const {
    MappingView v{e.config, "Enabled", {}, std::nullopt, std::nullopt};
    if (leases_ && e.config.enabled) {
        if (e.owned)
            v.node = options_.node_id;
        else if (!e.holder.empty())
            v.node = e.holder;
    }
    if (e.runner) {
        v.status = e.runner->status();
        if (v.status.failing) v.state = "Failing";
    } else {
        v.status.checkpoint = e.checkpoint;
        if (!e.config.enabled) {
            v.state = "Disabled";
            v.retained_wal_bytes = e.retained.bytes;
        } else if (leases_ && !e.owned) {
            // Runs on another node (or will, on whichever takes its lease): its counters are there.
        } else {
            v.state = "Failing";
            v.status.last_error = e.error;
        }
    }
    return v;
}

std::optional<MappingView> EventSourceMappings::get(const std::string& uuid) const {
    auto it = entries_.find(uuid);
    if (it == entries_.end()) return std::nullopt;
    return view(it->second);
}

std::optional<MappingView> EventSourceMappings::find(const std::string& function, const std::string& name) const {
    const Entry* e = entry_named(function, name);
    if (!e) return std::nullopt;
    return view(*e);
}

std::vector<MappingView> EventSourceMappings::list(const std::optional<std::string>& function) const {
    std::vector<MappingView> out;
    for (const auto& [uuid, e] : entries_)
        if (!function || e.config.function == *function) out.push_back(view(e));
    std::sort(out.begin(), out.end(), [](const MappingView& a, const MappingView& b) {
        return std::tie(a.config.function, a.config.name) < std::tie(b.config.function, b.config.name);
    });
    return out;
}

}  // namespace funcd

namespace funcd {

nlohmann::json to_json(const MappingView& v, const std::string& arn) {
    using nlohmann::json;
    json j = to_json(v.config);
    const MappingRunnerStatus& s = v.status;
    j["arn"] = arn;
    j["state"] = v.state;
    j["last_error"] = s.last_error.empty() ? json(nullptr) : json(s.last_error);
    j["last_processing_result"] = s.last_processing_result.empty() ? json(nullptr) : json(s.last_processing_result);
    j["connected"] = s.source.connected;
    j["checkpoint"] = s.checkpoint ? json{{"commit_lsn", format_lsn(s.checkpoint->commit_lsn)},
                                          {"ordinal", s.checkpoint->ordinal}}
                                   : json(nullptr);
    j["acknowledged_lsn"] = s.acknowledged ? json(format_lsn(*s.acknowledged)) : json(nullptr);
    j["server_wal_end"] = s.source.server_wal_end ? json(format_lsn(*s.source.server_wal_end)) : json(nullptr);
    j["lag_bytes"] = s.lag_bytes ? json(*s.lag_bytes) : json(nullptr);
    j["seconds_behind"] = s.seconds_behind;  // Lambda's IteratorAge, in seconds
    j["records_delivered"] = s.records_delivered;
    j["batches"] = {{"succeeded", s.batches_succeeded}, {"failed", s.batches_failed}};
    j["invocation_errors"] = s.invocation_errors;
    j["throttles"] = s.throttles;
    if (v.node) j["node"] = *v.node;
    if (v.state == "Disabled") {
        j["slot_retained_wal_bytes"] = v.retained_wal_bytes ? json(*v.retained_wal_bytes) : json(nullptr);
        if (v.retained_wal_bytes && *v.retained_wal_bytes > 0)
            j["warning"] = "the mapping is disabled, and its replication slot holds " +
                           std::to_string(*v.retained_wal_bytes) +
                           " bytes of WAL that PostgreSQL cannot recycle until the mapping is enabled or deleted; "
                           "max_slot_wal_keep_size bounds it (docs/event-sources.md)";
    }
    return j;
}

}  // namespace funcd
