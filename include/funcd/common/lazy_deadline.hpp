#pragma once
// A connection's deadline on one timer that is re-armed only when it fires: setting or
// clearing the deadline is a store, not a timer-queue update, which matters because the
// HTTP server and the Runtime API set and clear one on every request.
#include <memory>

#include <boost/system/error_code.hpp>

namespace funcd {

template <class Timer>
class LazyDeadline {
public:
    using Clock = typename Timer::clock_type;

    explicit LazyDeadline(const typename Timer::executor_type& executor) : timer_(executor) {}

    // From now on, `owner->on_deadline()` runs once `after` has passed, unless clear() or a
    // later set() comes first. `get_owner()` gives the shared_ptr the wait holds; it is only
    // called when the timer has to be armed, not on every set().
    template <class GetOwner>
    void set(typename Clock::duration after, GetOwner&& get_owner) {
        deadline_ = Clock::now() + after;
        if (armed_ && timer_.expiry() <= deadline_) return;
        arm(get_owner());
    }
    void clear() { deadline_ = Clock::time_point::max(); }
    // Ends the wait (the connection is closing), and with it the hold on its owner.
    void cancel() {
        clear();
        armed_ = false;
        timer_.cancel();
    }

private:
    template <class Owner>
    void arm(const std::shared_ptr<Owner>& owner) {
        armed_ = true;
        timer_.expires_at(deadline_);  // cancels an earlier wait, whose handler then ignores it
        timer_.async_wait([this, owner](const boost::system::error_code& ec) {
            if (ec) return;  // cancelled: closed, or re-armed for an earlier deadline
            armed_ = false;
            if (deadline_ == Clock::time_point::max()) return;
            if (Clock::now() < deadline_) return arm(owner);
            owner->on_deadline();
        });
    }

    Timer timer_;
    typename Clock::time_point deadline_ = Clock::time_point::max();
    bool armed_ = false;
};

}  // namespace funcd
