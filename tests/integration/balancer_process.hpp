#pragma once
// The stock balancers of examples/cluster (HAProxy, nginx) as a test's child process: found
// where Debian installs them, configured from the example files with the test's addresses,
// and run in a process group of their own.
#include <sys/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace funcd::testing {

// The binary `name` where Debian installs it (a PATH without /usr/sbin, as a non-root
// shell's, still finds it); empty when it is not installed.
std::string balancer_binary(const std::string& name);

// A port nothing listens on at 127.0.0.1 now.
unsigned short free_loopback_port();

// examples/cluster/`example` with each of `edits` ({text, replacement}) applied; each text
// must be there exactly once, so a changed example fails here rather than running unedited.
std::string example_balancer_config(const std::string& example,
                                    const std::vector<std::pair<std::string, std::string>>& edits);

// HAProxy's stats socket at `stats_socket` asked "show stat": the rows of the servers of
// backend "funcd" (named "node..."), by server name, each a column -> value map; empty when
// the socket does not answer.
std::map<std::string, std::map<std::string, std::string>> haproxy_servers(const std::filesystem::path& stats_socket);

// The balancer as the test's child, in a process group of its own (nginx's workers
// included), its output in a file. Started once it accepts connections on `port` (throws,
// with its output, when it exits or does not listen within 10 s); stopped with SIGTERM, then
// SIGKILL, each wait bounded.
class BalancerProcess {
public:
    BalancerProcess(std::vector<std::string> argv, std::filesystem::path output_file, unsigned short port);
    ~BalancerProcess() { stop(); }
    BalancerProcess(const BalancerProcess&) = delete;
    BalancerProcess& operator=(const BalancerProcess&) = delete;

    std::string output() const;

private:
    void stop();

    std::filesystem::path output_;
    pid_t pid_ = -1;
};

}  // namespace funcd::testing
