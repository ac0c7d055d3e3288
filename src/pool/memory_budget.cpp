#include "funcd/pool/memory_budget.hpp"

#include <algorithm>

namespace funcd {
namespace {

constexpr std::uint64_t kEstimateBytesPerMb = 1ull << 20;

// Whole MB, rounded up: a peak of 20.1 MB is charged 21.
std::int64_t whole_mb_rounded_up(std::uint64_t bytes) {
    return static_cast<std::int64_t>((bytes + kEstimateBytesPerMb - 1) / kEstimateBytesPerMb);
}

}  // namespace

std::string_view to_string(MemoryAdmission admission) {
    return admission == MemoryAdmission::observed ? "observed" : "declared";
}

MemoryEstimate::MemoryEstimate(int memory_mb, std::int64_t initial_mb)
    : memory_mb_(std::max(memory_mb, 1)), initial_mb_(std::clamp<std::int64_t>(initial_mb, 1, memory_mb_)) {}

void MemoryEstimate::observe(std::uint64_t peak_bytes) {
    if (!highest_peak_ || peak_bytes > *highest_peak_) highest_peak_ = peak_bytes;
}

std::int64_t MemoryEstimate::new_worker_mb() const {
    return highest_peak_ ? live_worker_mb(*highest_peak_) : initial_mb_;
}

std::int64_t MemoryEstimate::live_worker_mb(std::uint64_t peak_bytes) const {
    return std::min<std::int64_t>(whole_mb_rounded_up(peak_bytes) + kObservedHeadroomMb, memory_mb_);
}

std::int64_t MemoryBudget::new_worker_mb(const MemoryEstimate& estimate) const {
    return admission_ == MemoryAdmission::observed ? estimate.new_worker_mb() : estimate.memory_mb();
}

std::optional<std::int64_t> MemoryBudget::live_worker_mb(const MemoryEstimate& estimate,
                                                         std::optional<std::uint64_t> peak_bytes) const {
    if (admission_ != MemoryAdmission::observed) return estimate.memory_mb();
    if (!peak_bytes) return std::nullopt;
    return estimate.live_worker_mb(*peak_bytes);
}

bool MemoryBudget::try_charge(std::int64_t mb, const WorkerPool* requester) {
    if (used_mb_ + mb > limit_mb_ && evictor_) evictor_(used_mb_ + mb - limit_mb_, requester);
    if (used_mb_ + mb > limit_mb_) return false;
    used_mb_ += mb;
    return true;
}

void MemoryBudget::recharge(std::int64_t from_mb, std::int64_t to_mb, const WorkerPool* requester) {
    if (to_mb < from_mb) {
        release(from_mb - to_mb);
        return;
    }
    if (to_mb == from_mb) return;
    used_mb_ += to_mb - from_mb;
    if (used_mb_ > limit_mb_ && evictor_) evictor_(used_mb_ - limit_mb_, requester);
}

std::int64_t template_charge_mb(const TemplateKey& key) {
    const std::int64_t interpreter =
        key.runtime == TemplateRuntime::node ? kNodeTemplateChargeMb : kPythonTemplateChargeMb;
    return interpreter + kPreloadedModuleChargeMb * static_cast<std::int64_t>(key.preload.size());
}

void MemoryBudget::hold_template(const std::string& id, std::int64_t mb) {
    TemplateCharge& t = templates_[id];
    if (t.holders++ > 0) return;
    t.mb = mb;
    recharge(0, mb, nullptr);
}

void MemoryBudget::release_template(const std::string& id) {
    auto it = templates_.find(id);
    if (it == templates_.end()) return;
    if (--it->second.holders > 0) return;
    const std::int64_t mb = it->second.mb;
    templates_.erase(it);
    release(mb);
}

void MemoryBudget::release(std::int64_t mb) {
    used_mb_ -= mb;
    if (on_release_) on_release_();
}

}  // namespace funcd
