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
        for (const auto& record : found.changed) changes_.changed(record);
        for (const auto& name : found.deleted) changes_.deleted(name);
    });
}

}  // namespace funcd
