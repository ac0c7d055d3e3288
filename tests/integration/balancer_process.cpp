#include "balancer_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "daemon_harness.hpp"

namespace funcd::testing {

std::string balancer_binary(const std::string& name) {
    for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/usr/local/sbin/", "/usr/local/bin/"})
        if (::access((std::string(dir) + name).c_str(), X_OK) == 0) return dir + name;
    return {};
}

unsigned short free_loopback_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("no free port on loopback");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

std::string example_balancer_config(const std::string& example,
                                    const std::vector<std::pair<std::string, std::string>>& edits) {
    std::string text = read_file(std::filesystem::path(FUNCD_SOURCE_DIR) / "examples" / "cluster" / example);
    if (text.empty()) throw std::runtime_error("examples/cluster/" + example + " is missing");
    for (const auto& [from, to] : edits) {
        const auto at = text.find(from);
        if (at == std::string::npos || text.find(from, at + 1) != std::string::npos)
            throw std::runtime_error("examples/cluster/" + example + ": '" + from + "' is not there exactly once");
        text.replace(at, from.size(), to);
    }
    return text;
}

std::map<std::string, std::map<std::string, std::string>> haproxy_servers(const std::filesystem::path& stats_socket) {
    std::map<std::string, std::map<std::string, std::string>> out;
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string path = stats_socket.string();
    if (fd < 0 || path.size() >= sizeof addr.sun_path) return out;
    path.copy(addr.sun_path, path.size());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return out;
    }
    const std::string command = "show stat\n";
    ::send(fd, command.data(), command.size(), MSG_NOSIGNAL);
    std::string csv;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) csv.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    std::istringstream lines(csv);
    std::vector<std::string> columns;
    for (std::string line; std::getline(lines, line);) {
        std::vector<std::string> fields;
        std::istringstream cells(line.starts_with("# ") ? line.substr(2) : line);
        for (std::string cell; std::getline(cells, cell, ',');) fields.push_back(cell);
        if (line.starts_with("# ")) {
            columns = fields;
            continue;
        }
        std::map<std::string, std::string> row;
        for (std::size_t i = 0; i < fields.size() && i < columns.size(); ++i) row[columns[i]] = fields[i];
        if (row["pxname"] == "funcd" && row["svname"].starts_with("node")) out[row["svname"]] = row;
    }
    return out;
}

BalancerProcess::BalancerProcess(std::vector<std::string> argv, std::filesystem::path output_file,
                                 unsigned short port)
    : output_(std::move(output_file)) {
    using namespace std::chrono_literals;
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        ::setpgid(0, 0);
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // not left behind if the test dies
        const int out = ::open(output_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0) ::_exit(126);
        ::dup2(out, 1);
        ::dup2(out, 2);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::setpgid(pid_, pid_);
    const bool up = eventually(
        [&] {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return true;
            }
            try {
                ::close(connect_loopback(port));
                return true;
            } catch (const std::exception&) {
                return false;
            }
        },
        10s);
    if (pid_ < 0 || !up) {
        stop();
        throw std::runtime_error(argv[0] + " did not start listening on port " + std::to_string(port) + ":\n" +
                                 output());
    }
}

std::string BalancerProcess::output() const { return read_file(output_); }

void BalancerProcess::stop() {
    using namespace std::chrono_literals;
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGTERM);
    const bool exited = eventually([&] { return ::waitpid(pid_, nullptr, WNOHANG) == pid_; }, 5000ms);
    ::kill(-pid_, SIGKILL);  // what is left of the group (nginx's workers), if anything
    if (!exited) ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

}  // namespace funcd::testing
