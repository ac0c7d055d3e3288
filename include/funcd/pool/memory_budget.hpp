#pragma once
// Admission by memory: the host memory promised to workers. Every live worker is charged
// an amount when it is started, that amount may be refreshed while it lives, and it is
// released when the worker ends; the charges together stay within the budget, so a budget
// full of idle workers can be made room in by evicting some.
//
// What a worker is charged depends on the admission (see MemoryAdmission):
// - declared: its function's memory_mb, all its life.
// - observed: what it is expected to use (MemoryEstimate: the function's workers' highest
//   peak so far plus headroom, or kInitialWorkerEstimateMb before any was seen), then
//   what it was seen to use (its own peak plus headroom), never more than memory_mb (its
//   own cgroup's limit). Safe only because the workers' common cgroup is limited to the
//   budget (CgroupManager::fence_memory): if workers outgrow their charges together, the
//   kernel reclaims or OOM-kills among them, never the host's other processes.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "funcd/sandbox/template_key.hpp"

namespace funcd {

class WorkerPool;

enum class MemoryAdmission {
    declared,  // memory_mb per live worker: the budget alone keeps workers within the host's RAM
    observed,  // expected, then observed use per live worker, under the workers' memory fence
};

std::string_view to_string(MemoryAdmission admission);

// Room left above a worker's observed peak: what it may grow by before its next reading
// (one after every invocation), e.g. an invocation's first allocations, a Python import
// or V8 growing its heap by a few MB. A reading that outgrows it is charged at once.
inline constexpr std::int64_t kObservedHeadroomMb = 8;

// What a new worker is charged before any worker of its function was seen (never more
// than the function's memory_mb). Measured as the peak of a worker's memory cgroup after
// two invocations (memory.max_usage_in_bytes; funcd's sandbox, cgroup v1, Debian 12, 2-vCPU
// VM): a Python 3.11 handler importing a dozen stdlib modules (json, ssl, urllib.request,
// sqlite3, logging, ...) 13.1 MB started plainly, 10.6 MB forked from a runtime template
// (a noop 4.0 and 2.5 MB); a Node.js 18 handler requiring http, https, crypto and zlib
// 8.5 MB (a noop 7.2 MB); the noop `provided` bootstrap 1.2 MB. The largest, rounded up to
// 16 MB, plus kObservedHeadroomMb. A custom runtime can be anything (a JVM): its first
// reading corrects the guess, and the fence bounds it meanwhile. 500 first invocations
// charged so (12,000 MB) fit in the default budget of a 24 GB host.
inline constexpr std::int64_t kInitialWorkerEstimateMb = 16 + kObservedHeadroomMb;

// What a runtime template (runtime_template.hpp) is charged while any function holds it,
// once for all of them: its resident memory, measured with `bench/run --only idle`
// (docs/benchmarks.md: Python's template 12.0 MB RSS, Node.js's 41.1 MB), rounded up; and
// for each module it preloads, what numpy and Pillow took together (about 60 MB), halved.
// What its copies write is their own, and charged to them.
inline constexpr std::int64_t kPythonTemplateChargeMb = 16;
inline constexpr std::int64_t kNodeTemplateChargeMb = 48;
inline constexpr std::int64_t kPreloadedModuleChargeMb = 30;
std::int64_t template_charge_mb(const TemplateKey& key);

// What one function's workers are expected to use (one per pool): learnt from their
// peaks, never more than memory_mb. Pure bookkeeping; the budget decides what is charged.
class MemoryEstimate {
public:
    // `initial_mb`: the charge of a new worker until a peak was seen (clamped to 1..memory_mb).
    MemoryEstimate(int memory_mb, std::int64_t initial_mb);

    // A reading of a worker's peak memory (its cgroup's), in bytes.
    void observe(std::uint64_t peak_bytes);
    // A new worker: the highest peak seen so far plus headroom; the initial estimate while
    // none was seen. At most memory_mb.
    std::int64_t new_worker_mb() const;
    // A live worker whose own peak so far is `peak_bytes`: that plus headroom, at most memory_mb.
    std::int64_t live_worker_mb(std::uint64_t peak_bytes) const;

    int memory_mb() const { return memory_mb_; }
    // The highest peak seen, in bytes; nullopt before the first reading.
    std::optional<std::uint64_t> highest_peak_bytes() const { return highest_peak_; }

private:
    int memory_mb_;
    std::int64_t initial_mb_;
    std::optional<std::uint64_t> highest_peak_;
};

class MemoryBudget {
public:
    // Ends idle workers of pools other than `requester`, least recently used first, until
    // `needed_mb` is free or nothing more can be evicted.
    using Evictor = std::function<void(std::int64_t needed_mb, const WorkerPool* requester)>;

    explicit MemoryBudget(std::int64_t limit_mb, MemoryAdmission admission = MemoryAdmission::declared)
        : limit_mb_(limit_mb), admission_(admission) {}

    void set_evictor(Evictor evictor) { evictor_ = std::move(evictor); }
    // Called after memory was released (to wake invocations waiting for it).
    void on_release(std::function<void()> callback) { on_release_ = std::move(callback); }

    // What a new worker of a function with this estimate is charged.
    std::int64_t new_worker_mb(const MemoryEstimate& estimate) const;
    // What a live worker of that function is charged once its peak so far was read;
    // nullopt: no reading yet, its charge stays as it is.
    std::optional<std::int64_t> live_worker_mb(const MemoryEstimate& estimate,
                                               std::optional<std::uint64_t> peak_bytes) const;

    // Charges `mb` if it fits, evicting idle workers of other pools to make it fit.
    bool try_charge(std::int64_t mb, const WorkerPool* requester);
    // A live worker's charge goes from `from_mb` to `to_mb`. Growth is never refused (the
    // memory is in use already), but idle workers of other pools are evicted to bring the
    // budget back within its limit, and until then no new worker fits; a shrink is a release.
    void recharge(std::int64_t from_mb, std::int64_t to_mb, const WorkerPool* requester);
    void release(std::int64_t mb);

    // A runtime template a pool holds (TemplateKey::id), charged `mb` from its first holder
    // to its last. Never refused, like growth: a template is shared by functions already
    // admitted, and without it their workers would each use more. Idle workers of other
    // pools are evicted to bring the budget back within its limit.
    void hold_template(const std::string& id, std::int64_t mb);
    void release_template(const std::string& id);

    // What admission counts now: the sum of live workers' and held templates' charges.
    std::int64_t used_mb() const { return used_mb_; }
    std::int64_t limit_mb() const { return limit_mb_; }
    MemoryAdmission admission() const { return admission_; }

private:
    std::int64_t limit_mb_;
    MemoryAdmission admission_;
    std::int64_t used_mb_ = 0;
    struct TemplateCharge {
        int holders = 0;
        std::int64_t mb = 0;
    };
    std::map<std::string, TemplateCharge> templates_;
    Evictor evictor_;
    std::function<void()> on_release_;
};

}  // namespace funcd
