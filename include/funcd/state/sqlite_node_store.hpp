#pragma once
// NodeStore on the single host's SQLite database (funcd.db): one row, this node's.
#include <filesystem>
#include <mutex>

#include "funcd/registry/sqlite.hpp"
#include "funcd/state/node_store.hpp"

namespace funcd {

class SqliteNodeStore final : public NodeStore {
public:
    explicit SqliteNodeStore(const std::filesystem::path& db_path);

    void heartbeat(const NodeReport& report) override;
    std::vector<NodeRecord> nodes() override;
    bool forget(const std::string& id) override;

private:
    std::mutex mutex_;  // the connection is not shared between threads
    sqlite::Database db_;
};

}  // namespace funcd
