#include "funcd/triggers/file_triggers.hpp"

#include <sys/stat.h>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include "funcd/triggers/s3_event.hpp"

namespace funcd {

FileTriggers::FileTriggers(boost::asio::io_context& io, boost::asio::thread_pool& blocking, AsyncInvoker& invoker,
                           std::string region)
    : io_(io), blocking_(blocking), invoker_(invoker), region_(std::move(region)) {}

void FileTriggers::set(FileTriggerDefinition definition) {
    Key key{definition.function, definition.name};
    auto watcher = std::make_unique<FileWatcher>(io_, definition.directory, definition.patterns,
                                                 [this, key](FileEvent e) { on_file(key, std::move(e)); });
    spdlog::info("file trigger: function={} trigger={} watching {} ({} directories)", key.first, key.second,
                 definition.directory.string(), watcher->watch_count());
    entries_.erase(key);
    entries_.emplace(key, Entry{std::move(definition), std::move(watcher)});
}

bool FileTriggers::remove(const std::string& function, const std::string& name) {
    return entries_.erase({function, name}) > 0;
}

void FileTriggers::function_deleted(const std::string& function) {
    std::erase_if(entries_, [&](const auto& kv) { return kv.first.first == function; });
}

std::vector<FileTriggerDefinition> FileTriggers::list(const std::string& function) const {
    std::vector<FileTriggerDefinition> out;
    for (const auto& [key, e] : entries_)
        if (key.first == function) out.push_back(e.definition);
    return out;
}

const FileTriggerDefinition* FileTriggers::get(const std::string& function, const std::string& name) const {
    auto it = entries_.find({function, name});
    return it == entries_.end() ? nullptr : &it->second.definition;
}

std::vector<BindMount> FileTriggers::mounts_for(const std::string& function) const {
    std::vector<BindMount> out;
    for (const auto& [key, e] : entries_) {
        if (key.first != function) continue;
        out.push_back({e.definition.directory, "/mnt/" + key.second, false});
        if (e.definition.output_directory)
            out.push_back({*e.definition.output_directory, "/mnt/" + key.second + "-out", true});
    }
    return out;
}

void FileTriggers::adjust_spec(const FunctionConfig& config, WorkerSpec& spec) const {
    spec.binds = mounts_for(config.name);
    for (const auto& [key, e] : entries_) {
        if (key.first != config.name || !e.definition.output_directory) continue;
        struct stat st {};
        if (::stat(e.definition.output_directory->c_str(), &st) != 0) {
            spdlog::warn("file trigger: function={} trigger={} cannot stat output directory {}: {} (errno {})",
                         key.first, key.second, e.definition.output_directory->string(), std::strerror(errno), errno);
            continue;
        }
        // The API refuses root-owned output directories; a later chown to root is not followed.
        if (st.st_uid != 0) spec.host_identity = std::pair{st.st_uid, st.st_gid};
        break;
    }
}

void FileTriggers::on_file(const Key& key, FileEvent e) {
    // The eTag is the content's MD5: reading the file is disk work, off the loop.
    boost::asio::post(blocking_, [this, key, e = std::move(e)] {
        std::string etag;
        try {
            etag = file_etag(e.directory / e.key);
        } catch (const std::exception& ex) {
            // Gone or unreadable between its close and now: nothing to hand the function.
            spdlog::warn("file trigger: function={} trigger={} skipped {}: {}", key.first, key.second, e.key,
                         ex.what());
            return;
        }
        std::string event = make_s3_event(e, key.second, etag, region_).dump();
        boost::asio::post(io_, [this, key, event = std::move(event), file = e.key]() mutable {
            if (!entries_.count(key)) return;  // removed meanwhile
            invoker_.submit(key.first, std::move(event), "file:" + key.second,
                            [key, file](const AcceptResult& result) {
                                if (!result.ok())
                                    spdlog::error("file trigger: function={} trigger={} could not queue {}: {}",
                                                  key.first, key.second, file, result.message());
                                else
                                    spdlog::debug("file trigger: function={} trigger={} file={} request_id={}",
                                                  key.first, key.second, file, result.request_id());
                            });
        });
    });
}

}  // namespace funcd
