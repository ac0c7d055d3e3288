#include "funcd/gateway/registry_sync.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

namespace funcd {

RegistrySync::RegistrySync(boost::asio::io_context& io, boost::asio::thread_pool& pool, Registry& registry,
                           FunctionChanges& changes)
    : io_(io),
      registry_(registry),
      changes_(changes),
      // What fails is read again at the next notification or poll, from where it stopped.
      task_(pool, "registry: cannot read the shared state's changes", [this] { read(); }) {}

void RegistrySync::read() {
    RegistryChanges found = registry_.refresh();
    if (found.empty()) return;
    spdlog::info("registry: {} functions changed and {} deleted by other nodes", found.changed.size(),
                 found.deleted.size());
    boost::asio::post(io_, [this, found = std::move(found)] {
        // As the registry has them now: a change this node made since the read is newer.
        auto follow = [this](const std::string& name) {
            if (FunctionRecordPtr now = registry_.find(name)) changes_.changed(now);
            else changes_.deleted_elsewhere(name);
        };
        for (const auto& record : found.changed) follow(record->name);
        for (const auto& name : found.deleted) follow(name);
    });
}

}  // namespace funcd
