#pragma once
// Starts the real funcd binary on a free port with a temporary data directory and talks
// to it over HTTP. Nothing in the invoke path is substituted.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <thread>

#include <nlohmann/json.hpp>

namespace funcd::testing {

struct HttpResult {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
    nlohmann::json json() const { return nlohmann::json::parse(body); }
    std::string header(const std::string& lower) const {
        auto it = headers.find(lower);
        return it == headers.end() ? std::string() : it->second;
    }
};

// A TCP connection to 127.0.0.1:port (the caller closes it). Throws when it cannot connect.
int connect_loopback(unsigned short port);

// One blocking HTTP/1.1 request to 127.0.0.1:port (a new connection each time).
HttpResult http_request(unsigned short port, const std::string& method, const std::string& target,
                        const std::string& body = {}, const std::vector<std::pair<std::string, std::string>>& headers = {});

// Builds a zip from {path, (content, mode)} entries with the `zip` tool.
std::string make_zip(const std::map<std::string, std::pair<std::string, int>>& files);
// A zip of a one-file Python module `app.py`.
std::string python_zip(const std::string& app_py);
// Settings of a python3 function whose handler is app.handler (python_zip's), with `extra`
// merged in.
nlohmann::json python_settings(nlohmann::json extra = nlohmann::json::object());
// A zip of an executable `bootstrap` with this content.
std::string bootstrap_zip(const std::string& bootstrap);
std::string read_file(const std::filesystem::path& p);
// Removes the tree at `p`, stored code included (its directories are read-only); errors ignored.
void remove_tree(const std::filesystem::path& p);

// The JSON documents a function printed after `marker` on its log lines, in order.
std::vector<nlohmann::json> logged_json(const class Daemon& d, const std::string& function, const std::string& marker);

// Pids of processes whose parent is `parent`: a daemon's workers. Its runtime templates
// (which are its children too, but no workers) are left out; templates_of lists them.
std::vector<pid_t> children_of(pid_t parent);
std::vector<pid_t> templates_of(pid_t daemon);
// The function's log file as it is now.
std::string function_log(const class Daemon& d, const std::string& function);
// The function's log once the REPORT line of `request_id` is in it (as it is after 5 s if not).
std::string log_after(const class Daemon& d, const std::string& function, const std::string& request_id);
// The usage record of `request_id`, once it is there (null after 5 s if not).
nlohmann::json usage_record(class Daemon& d, const std::string& function, const std::string& request_id);

// A file under /proc/PID, read with plain calls: empty when the process is gone. (The
// process may exit between open and read, and std::ifstream reports that ESRCH by
// throwing from its buffer.)
std::string read_proc_file(pid_t pid, const std::string& name);
// A process's resident memory, in KiB (VmRSS); -1 when it cannot be read.
long rss_kib(pid_t pid);

// Sets an environment variable for the daemons started while it lives.
class ScopedEnv {
public:
    ScopedEnv(std::string name, const std::string& value);
    ~ScopedEnv();
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    std::string name_;
    std::optional<std::string> saved_;
};

// For a test that measures the daemon's RSS: a sanitizer build keeps freed memory in
// quarantine (256 MiB by default), which RSS would count; without it, RSS follows what the
// daemon holds. (Other builds ignore ASAN_OPTIONS.)
ScopedEnv without_asan_quarantine();
// Pids of every descendant of `root`.
// Every process below `root`, runtime templates left out (as by children_of).
std::vector<pid_t> descendants_of(pid_t root);

class Daemon {
public:
    inline static const std::string kToken = "integration-test-token";

    // Starts funcd with `extra_args`; waits until it listens. Uses `data_dir` if given
    // (to restart on the same data), else a fresh temporary directory.
    explicit Daemon(std::vector<std::string> extra_args = {}, std::optional<std::filesystem::path> data_dir = {});
    ~Daemon();  // SIGTERM, then SIGKILL if it does not exit

    unsigned short port() const { return port_; }
    pid_t pid() const { return pid_; }
    const std::filesystem::path& data_dir() const { return data_dir_; }
    std::string log() const { return read_file(log_path_); }

    // Authenticated request to the API.
    HttpResult api(const std::string& method, const std::string& target, const std::string& body = {},
                   const std::string& content_type = "application/json");
    HttpResult invoke(const std::string& name, const std::string& event = "{}");
    // Deploys with the JSON form; expects 200/201 unless told otherwise.
    HttpResult deploy(const std::string& name, const nlohmann::json& settings, const std::string& zip);

    // Sends `sig` and waits for exit; returns the wait status.
    int stop(int sig = 15, std::chrono::seconds wait = std::chrono::seconds(40));
    bool running() const { return pid_ > 0; }
    // The data directory outlives this daemon (to restart another one on it); the caller removes it.
    void keep_data_dir() { own_data_dir_ = false; }

private:
    std::filesystem::path data_dir_;
    std::filesystem::path log_path_;
    bool own_data_dir_ = false;
    pid_t pid_ = -1;
    unsigned short port_ = 0;
};

// Polls `pred` every 20 ms until it is true or `timeout` passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pred();
}

}  // namespace funcd::testing
