#pragma once
// Runs file triggers: one inotify watcher per trigger; each completed file in the watched
// tree queues an asynchronous invocation with an S3-notification-shaped event. Runs on
// the loop; hashing a file for its eTag happens on the blocking pool.
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "funcd/dispatch/async_invoker.hpp"
#include "funcd/registry/function_config.hpp"
#include "funcd/sandbox/launcher.hpp"
#include "funcd/triggers/file_watcher.hpp"
#include "funcd/triggers/trigger_store.hpp"

namespace funcd {

class FileTriggers {
public:
    FileTriggers(boost::asio::io_context& io, boost::asio::thread_pool& blocking, AsyncInvoker& invoker,
                 std::string region);

    // Starts watching (replacing a trigger of the same name). Throws std::system_error when
    // the directory cannot be watched.
    void set(FileTriggerDefinition definition);
    bool remove(const std::string& function, const std::string& name);
    void function_deleted(const std::string& function);

    std::vector<FileTriggerDefinition> list(const std::string& function) const;
    const FileTriggerDefinition* get(const std::string& function, const std::string& name) const;
    // What the function's workers see: each trigger's directory read-only at
    // /mnt/<trigger>, its output directory writable at /mnt/<trigger>-out.
    std::vector<BindMount> mounts_for(const std::string& function) const;
    // Adds the mounts to a worker of the function; with an output directory, the worker
    // runs as that directory's owner so what it writes there is theirs.
    void adjust_spec(const FunctionConfig& config, WorkerSpec& spec) const;

private:
    using Key = std::pair<std::string, std::string>;  // function, trigger
    struct Entry {
        FileTriggerDefinition definition;
        std::unique_ptr<FileWatcher> watcher;
    };
    void on_file(const Key& key, FileEvent e);

    boost::asio::io_context& io_;
    boost::asio::thread_pool& blocking_;
    AsyncInvoker& invoker_;
    std::string region_;
    std::map<Key, Entry> entries_;
};

}  // namespace funcd
