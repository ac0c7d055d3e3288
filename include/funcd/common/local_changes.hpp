#pragma once
// Changes this node makes to definitions that other nodes change too (schedules, file
// triggers, routes, event source mappings), counted so that reading the shared store again cannot undo one: a
// reload that read while a change was under way, or before one began, would see the store
// without it. A reload marks the counts before it reads (none under way), and applies what it
// read only if no change began since. Thread-safe.
#include <atomic>
#include <cstdint>
#include <optional>

namespace funcd {

class LocalChanges {
public:
    // Held across a change's store call: it counts as done once the call returns or throws.
    class StoreCall {
    public:
        explicit StoreCall(LocalChanges& changes) : changes_(changes) {}
        ~StoreCall() { changes_.done(); }
        StoreCall(const StoreCall&) = delete;
        StoreCall& operator=(const StoreCall&) = delete;

    private:
        LocalChanges& changes_;
    };

    // On the loop, before the change's store call is sent off.
    void begin() { ++begun_; }
    // The change is done: its store call returned or threw (StoreCall says so), or, for an
    // owner that applies the change on the loop after the call, once it has.
    void done() { ++done_; }

    // Before a reload reads: its mark, or nullopt when a change is under way (the next
    // reload reads it once it is stored).
    std::optional<std::uint64_t> quiet() const {
        const std::uint64_t done = done_.load();  // first: what is done was stored before the read
        const std::uint64_t begun = begun_.load();
        if (begun != done) return std::nullopt;
        return begun;
    }
    // Whether no change began since `mark`.
    bool none_since(std::uint64_t mark) const { return begun_.load() == mark; }

private:
    std::atomic<std::uint64_t> begun_{0};
    std::atomic<std::uint64_t> done_{0};
};

}  // namespace funcd
