#pragma once
// A ChangeSource whose changes a test hands it (push), honouring the seam's contract: a
// read completes, on the loop and never inline, once a change is buffered; changes at or
// before the position given to start() are skipped; stop() ends an outstanding read with
// operation_aborted. It records what it was acknowledged. And a factory making such
// sources, recording what it provisioned and deprovisioned.
#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "funcd/common/api_error.hpp"
#include "funcd/event_sources/change_source.hpp"
#include "funcd/event_sources/change_source_factory.hpp"

namespace funcd::testing {

class ScriptedChangeSource : public ChangeSource {
public:
    explicit ScriptedChangeSource(boost::asio::io_context& io) : io_(io) {}

    void start(ChangePosition after) override {
        started_after = after;
        started = true;
        status_.connected = true;
    }
    void read(std::size_t max_changes, ReadHandler handler) override {
        reads_asked.push_back(max_changes);
        max_ = max_changes;
        handler_ = std::move(handler);
        serve();
    }
    void acknowledge(std::uint64_t commit_lsn) override { acknowledged.push_back(commit_lsn); }
    ChangeSourceStatus status() const override { return status_; }
    void stop() override {
        stopped = true;
        if (handler_) {
            auto h = std::move(handler_);
            handler_ = nullptr;
            boost::asio::post(io_, [h] { h(std::make_error_code(std::errc::operation_canceled), {}); });
        }
    }

    // On the loop's thread.
    void push(std::vector<RowChange> changes) {
        for (auto& c : changes) {
            if (started_after && c.position <= *started_after) continue;  // as the seam promises
            buffered_.push_back(std::move(c));
        }
        serve();
    }
    void set_status(ChangeSourceStatus s) { status_ = std::move(s); }
    std::size_t buffered() const { return buffered_.size(); }

    std::optional<ChangePosition> started_after;
    bool started = false;
    bool stopped = false;
    std::vector<std::uint64_t> acknowledged;
    std::vector<std::size_t> reads_asked;

private:
    void serve() {
        if (!handler_ || buffered_.empty() || stopped) return;
        std::vector<RowChange> out;
        while (!buffered_.empty() && out.size() < max_) {
            out.push_back(std::move(buffered_.front()));
            buffered_.pop_front();
        }
        auto h = std::move(handler_);
        handler_ = nullptr;
        boost::asio::post(io_, [h, out = std::move(out)]() mutable { h({}, std::move(out)); });
    }

    boost::asio::io_context& io_;
    std::deque<RowChange> buffered_;
    std::size_t max_ = 0;
    ReadHandler handler_;
    ChangeSourceStatus status_;
};

// Hands the runner a source the test keeps (and can look at after the runner is gone).
class SharedSource : public ChangeSource {
public:
    explicit SharedSource(std::shared_ptr<ScriptedChangeSource> s) : s_(std::move(s)) {}
    void start(ChangePosition after) override { s_->start(after); }
    void read(std::size_t max_changes, ReadHandler handler) override { s_->read(max_changes, std::move(handler)); }
    void acknowledge(std::uint64_t commit_lsn) override { s_->acknowledge(commit_lsn); }
    ChangeSourceStatus status() const override { return s_->status(); }
    void stop() override { s_->stop(); }

private:
    std::shared_ptr<ScriptedChangeSource> s_;
};

class ScriptedSourceFactory : public ChangeSourceFactory {
public:
    explicit ScriptedSourceFactory(boost::asio::io_context& io) : io_(io) {}

    void provision(const MappingConfig& c) override {
        if (refuse_tables.contains(c.tables.front()))
            throw ApiError::bad_parameter("table " + c.tables.front() + " does not exist");
        provisioned.push_back(c.uuid);
    }
    std::unique_ptr<ChangeSource> make(const MappingConfig& c) override {
        auto s = std::make_shared<ScriptedChangeSource>(io_);
        sources[c.uuid] = s;
        return std::make_unique<SharedSource>(s);
    }
    void deprovision(const MappingConfig& c) override { deprovisioned.push_back(c.uuid); }
    std::optional<std::uint64_t> retained_bytes(const MappingConfig&) override {
        if (retained_fails) throw std::runtime_error("the server cannot be reached");
        return retained.load();
    }

    std::set<std::string> refuse_tables;
    std::atomic<std::uint64_t> retained{0};  // what every disabled mapping's source holds back
    std::atomic<bool> retained_fails{false};
    std::vector<std::string> provisioned;     // written on the blocking pool: read after it is idle
    std::vector<std::string> deprovisioned;
    std::map<std::string, std::shared_ptr<ScriptedChangeSource>> sources;  // the latest made per mapping

private:
    boost::asio::io_context& io_;
};

// Changes for tests: `count` inserts into public.orders with ids from `first_id`, in
// transactions of `per_tx`, the first transaction committing at `first_commit_lsn`.
inline std::vector<RowChange> orders(int first_id, int count, int per_tx = 1, std::uint64_t first_commit_lsn = 0x1000,
                                     std::chrono::system_clock::time_point commit_time =
                                         std::chrono::system_clock::now()) {
    std::vector<RowChange> out;
    for (int i = 0; i < count; ++i) {
        const int tx = i / per_tx, ordinal = i % per_tx;
        RowChange c;
        c.table = "public.orders";
        c.operation = RowOperation::insert;
        c.position = {first_commit_lsn + static_cast<std::uint64_t>((first_id + tx) * 0x100),
                      static_cast<std::uint32_t>(ordinal)};
        c.lsn = c.position.commit_lsn - 0x80 + static_cast<std::uint64_t>(ordinal);
        c.last_in_transaction = ordinal == per_tx - 1 || i == count - 1;
        c.xid = static_cast<std::uint32_t>(700 + first_id + tx);
        c.commit_time = commit_time;
        c.keys = {{"id", first_id + i}};
        c.new_image = {{"id", first_id + i}, {"total", 10.5}, {"note", nullptr}};
        out.push_back(std::move(c));
    }
    return out;
}

}  // namespace funcd::testing
