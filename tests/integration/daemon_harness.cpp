#include "daemon_harness.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "funcd/common/base64.hpp"

namespace funcd::testing {
namespace {

std::filesystem::path make_temp_dir(const std::string& prefix) {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    return tmpl;
}

pid_t parent_of(pid_t pid) {
    const std::string stat = read_proc_file(pid, "stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream rest(stat.substr(close + 2));
    char state = 'Z';
    pid_t ppid = -1;
    rest >> state >> ppid;
    return state == 'Z' ? -1 : ppid;  // zombies are gone in every way that matters here
}

std::vector<pid_t> all_pids() {
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    while (dirent* e = ::readdir(d)) {
        char* end;
        long pid = std::strtol(e->d_name, &end, 10);
        if (*end == '\0' && pid > 0) out.push_back(static_cast<pid_t>(pid));
    }
    ::closedir(d);
    return out;
}

}  // namespace

std::vector<nlohmann::json> logged_json(const Daemon& d, const std::string& function, const std::string& marker) {
    std::vector<nlohmann::json> out;
    const std::string log = read_file(d.data_dir() / "logs" / (function + ".log"));
    for (std::size_t at = log.find(marker); at != std::string::npos; at = log.find(marker, at + 1)) {
        const auto start = at + marker.size();
        out.push_back(nlohmann::json::parse(log.substr(start, log.find('\n', start) - start)));
    }
    return out;
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

int connect_loopback(unsigned short port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket failed: " + std::string(std::strerror(errno)));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        const int err = errno;
        ::close(fd);
        throw std::runtime_error("connect to funcd failed: " + std::string(std::strerror(err)));
    }
    return fd;
}

HttpResult http_request(unsigned short port, const std::string& method, const std::string& target,
                        const std::string& body, const std::vector<std::pair<std::string, std::string>>& headers) {
    const int fd = connect_loopback(port);
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    req += body;
    for (std::size_t off = 0; off < req.size();) {
        ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;  // the server may answer (413) before reading everything
        off += static_cast<std::size_t>(n);
    }
    std::string raw;
    char buf[65536];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        raw.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);

    HttpResult r;
    auto head_end = raw.find("\r\n\r\n");
    if (head_end == std::string::npos) throw std::runtime_error("no HTTP response from funcd: '" + raw + "'");
    std::istringstream head(raw.substr(0, head_end));
    std::string line;
    std::getline(head, line);
    r.status = std::stoi(line.substr(9, 3));
    while (std::getline(head, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        for (auto& c : name) c = static_cast<char>(std::tolower(c));
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        r.headers[name] = value;
    }
    r.body = raw.substr(head_end + 4);
    return r;
}

std::string make_zip(const std::map<std::string, std::pair<std::string, int>>& files) {
    auto dir = make_temp_dir("funcd-zip-");
    for (const auto& [path, entry] : files) {
        auto p = dir / "src" / path;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << entry.first;
        std::filesystem::permissions(p, static_cast<std::filesystem::perms>(entry.second));
    }
    std::string cmd = "cd '" + (dir / "src").string() + "' && zip -qr -X '" + (dir / "out.zip").string() + "' .";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("zip failed");
    std::string zip = read_file(dir / "out.zip");
    std::filesystem::remove_all(dir);
    return zip;
}

std::string python_zip(const std::string& app_py) { return make_zip({{"app.py", {app_py, 0644}}}); }

nlohmann::json python_settings(nlohmann::json extra) {
    nlohmann::json s{{"runtime", "python3"}, {"handler", "app.handler"}};
    s.update(extra);
    return s;
}

std::string bootstrap_zip(const std::string& bootstrap) { return make_zip({{"bootstrap", {bootstrap, 0755}}}); }

namespace {

bool is_runtime_template(pid_t pid) {
    // Python's and Node.js's name the templates' native half on their command line.
    return read_proc_file(pid, "cmdline").find("funcd-template.so") != std::string::npos;
}

}  // namespace

std::vector<pid_t> children_of(pid_t parent) {
    std::vector<pid_t> out;
    for (pid_t pid : all_pids())
        if (parent_of(pid) == parent && !is_runtime_template(pid)) out.push_back(pid);
    return out;
}

std::vector<pid_t> templates_of(pid_t daemon) {
    std::vector<pid_t> out;
    for (pid_t pid : all_pids())
        if (parent_of(pid) == daemon && is_runtime_template(pid)) out.push_back(pid);
    return out;
}

std::vector<pid_t> descendants_of(pid_t root) {
    std::map<pid_t, pid_t> parents;
    for (pid_t pid : all_pids()) {
        const pid_t parent = parent_of(pid);
        // A template is a child of the daemon; everything forked from it is the daemon's too.
        if (parent != root || !is_runtime_template(pid)) parents[pid] = parent;
    }
    std::set<pid_t> found{root};
    bool grew = true;
    while (grew) {
        grew = false;
        for (const auto& [pid, ppid] : parents)
            if (found.count(ppid) && !found.count(pid)) {
                found.insert(pid);
                grew = true;
            }
    }
    found.erase(root);
    return {found.begin(), found.end()};
}

Daemon::Daemon(std::vector<std::string> extra_args, std::optional<std::filesystem::path> data_dir) {
    if (data_dir) {
        data_dir_ = *data_dir;
        std::filesystem::create_directories(data_dir_);  // the daemon's log is written there from the start
    } else {
        data_dir_ = make_temp_dir("funcd-it-");
        own_data_dir_ = true;
    }
    log_path_ = data_dir_ / ("daemon-" + std::to_string(std::random_device{}()) + ".log");
    std::vector<std::string> args = {FUNCD_BINARY,  "serve",
                                     "--listen",    "127.0.0.1:0",
                                     "--data-dir",  data_dir_.string(),
                                     "--runtime-dir", std::string(FUNCD_SOURCE_DIR) + "/runtime",
                                     "--log-level", "debug"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());

    pid_ = ::fork();
    if (pid_ == 0) {
        int out = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0) ::_exit(126);
        ::dup2(out, 1);
        ::dup2(out, 2);
        ::setenv("FUNCD_API_TOKEN", kToken.c_str(), 1);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    static const std::regex listening(R"(listening on [0-9.]+:([0-9]+))");
    bool up = eventually(
        [&] {
            std::smatch m;
            std::string text = log();
            if (std::regex_search(text, m, listening)) {
                port_ = static_cast<unsigned short>(std::stoi(m[1]));
                return true;
            }
            int status;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("funcd exited at start:\n" + log());
            }
            return false;
        },
        std::chrono::milliseconds(20000));
    if (!up) throw std::runtime_error("funcd did not start listening:\n" + log());
}

Daemon::~Daemon() {
    if (pid_ > 0) stop(SIGTERM, std::chrono::seconds(10));
    if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    if (own_data_dir_) remove_tree(data_dir_);
}

void remove_tree(const std::filesystem::path& p) {
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(p, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
        if (it->is_directory(ec))
            std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                         std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(p, ec);
}

int Daemon::stop(int sig, std::chrono::seconds wait) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, sig);
    int status = -1;
    auto end = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < end) {
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            return status;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
}

HttpResult Daemon::api(const std::string& method, const std::string& target, const std::string& body,
                       const std::string& content_type) {
    return http_request(port_, method, target, body,
                        {{"Authorization", "Bearer " + kToken}, {"Content-Type", content_type}});
}

HttpResult Daemon::invoke(const std::string& name, const std::string& event) {
    return api("POST", "/v1/functions/" + name + "/invoke", event);
}

HttpResult Daemon::deploy(const std::string& name, const nlohmann::json& settings, const std::string& zip) {
    nlohmann::json body = settings;
    body["code"] = {{"zip_base64", base64_encode(zip)}};
    return api("PUT", "/v1/functions/" + name, body.dump());
}

std::string function_log(const Daemon& d, const std::string& function) {
    return read_file(d.data_dir() / "logs" / (function + ".log"));
}

std::string log_after(const Daemon& d, const std::string& function, const std::string& request_id) {
    std::string log;
    eventually([&] {
        log = function_log(d, function);
        return log.find("REPORT RequestId: " + request_id) != std::string::npos;
    });
    return log;
}

nlohmann::json usage_record(Daemon& d, const std::string& function, const std::string& request_id) {
    nlohmann::json found;
    eventually([&] {
        const nlohmann::json records = d.api("GET", "/v1/usage/records?function=" + function).json()["records"];
        for (const auto& r : records)
            if (r["request_id"] == request_id) found = r;
        return !found.is_null();
    });
    return found;
}

std::string read_proc_file(pid_t pid, const std::string& name) {
    std::string text;
    const int fd = ::open(("/proc/" + std::to_string(pid) + "/" + name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return text;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return text;
}

long rss_kib(pid_t pid) {
    std::istringstream status(read_proc_file(pid, "status"));
    std::string line;
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

ScopedEnv::ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) saved_ = old;
    ::setenv(name_.c_str(), value.c_str(), 1);
}

ScopedEnv::~ScopedEnv() {
    if (saved_) ::setenv(name_.c_str(), saved_->c_str(), 1);
    else ::unsetenv(name_.c_str());
}

ScopedEnv without_asan_quarantine() {
    const char* asan = std::getenv("ASAN_OPTIONS");
    return ScopedEnv("ASAN_OPTIONS",
                     std::string(asan ? asan : "") + (asan && *asan ? ":" : "") + "quarantine_size_mb=0");
}

}  // namespace funcd::testing
