#include "funcd/gateway/registry_sync.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace funcd {

RegistrySync::RegistrySync(boost::asio::io_context& io, boost::asio::thread_pool& blocking, Registry& registry,
                           FunctionChanges& changes)
    : io_(io), blocking_(blocking), registry_(registry), changes_(changes) {}

void RegistrySync::refresh() {
    {
        std::lock_guard lock(mutex_);
        if (reading_) {
            again_ = true;
            return;
        }
        reading_ = true;
    }
    boost::asio::post(blocking_, [this] { read(); });
}

void RegistrySync::read() {
    while (true) {
        try {
            RegistryChanges found = registry_.refresh();
            if (!found.empty()) {
                spdlog::info("registry: {} functions changed and {} deleted by other nodes", found.changed.size(),
                             found.deleted.size());
                boost::asio::post(io_, [this, found = std::move(found)] {
                    for (const auto& record : found.changed) changes_.changed(record);
                    for (const auto& name : found.deleted) changes_.deleted(name);
                });
            }
        } catch (const std::exception& e) {
            // The next notification or poll reads again from where this one stopped.
            spdlog::warn("registry: cannot read the shared state's changes: {}", e.what());
        }
        std::lock_guard lock(mutex_);
        if (!again_) {
            reading_ = false;
            return;
        }
        again_ = false;
    }
}

}  // namespace funcd
