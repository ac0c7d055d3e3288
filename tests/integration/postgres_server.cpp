#include "postgres_server.hpp"

#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace funcd::testing {
namespace {

namespace fs = std::filesystem;

// Debian 12's PostgreSQL (the postgresql-15 package).
const fs::path kBinDir = "/usr/lib/postgresql/15/bin";

unsigned short free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        const int e = errno;
        ::close(fd);
        throw std::runtime_error(std::string("bind/getsockname: ") + std::strerror(e));
    }
    ::close(fd);
    return ntohs(addr.sin_port);
}

std::string read_whole(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool process_alive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

// Servers of test processes that died without their destructor (a ctest timeout kills with
// SIGKILL) would run on: each server's directory names the test process that made it, and
// those of dead processes are stopped and removed.
void remove_orphans() {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/tmp", ec)) {
        const std::string name = e.path().filename();
        if (name.rfind("funcd-pg-", 0) != 0) continue;
        std::ifstream owner(e.path() / "owner.pid");
        pid_t pid = 0;
        if (!(owner >> pid) || process_alive(pid)) continue;
        const std::string data = (e.path() / "data").string();
        if (fs::exists(e.path() / "data" / "postmaster.pid")) {
            const std::string cmd = (::geteuid() == 0 ? "/usr/sbin/runuser -u postgres -- " : "") +
                                    (kBinDir / "pg_ctl").string() + " -D '" + data + "' -m immediate -w stop >/dev/null 2>&1";
            if (std::system(cmd.c_str()) != 0) continue;
        }
        fs::remove_all(e.path(), ec);
    }
}

}  // namespace

PostgresServer::PostgresServer(Options options) : options_(std::move(options)) {
    remove_orphans();
    for (const char* tool : {"initdb", "pg_ctl", "postgres"})
        if (!fs::exists(kBinDir / tool))
            throw std::runtime_error((kBinDir / tool).string() +
                                     " is missing: install PostgreSQL 15 (scripts/setup --tests)");
    char tmpl[] = "/tmp/funcd-pg-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    dir_ = tmpl;
    std::ofstream(dir_ / "owner.pid") << ::getpid() << "\n";
    data_ = dir_ / "data";
    socket_dir_ = dir_ / "sock";
    fs::create_directories(socket_dir_);
    if (::geteuid() == 0) {
        const passwd* pw = ::getpwnam("postgres");
        if (!pw) throw std::runtime_error("running as root and there is no postgres user to run PostgreSQL as");
        for (const auto& p : {dir_, socket_dir_})
            if (::chown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0)
                throw std::runtime_error("chown " + p.string() + ": " + std::strerror(errno));
    }
    port_ = free_port();
    run_as_postgres({(kBinDir / "initdb").string(), "-D", data_.string(), "-U", "postgres", "--auth=trust",
                     "--no-sync", "-E", "UTF8", "--locale=C"});
    {
        std::ofstream conf(data_ / "postgresql.conf", std::ios::app);
        conf << "\n# funcd tests\n"
             << "wal_level = " << options_.wal_level << "\n"
             << "max_replication_slots = 20\nmax_wal_senders = 20\n"
             << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
             << "listen_addresses = '127.0.0.1'\nport = " << port_ << "\n"
             << "unix_socket_directories = '" << socket_dir_.string() << "'\n"
             << "shared_buffers = 16MB\nmax_connections = 40\n"
             << "password_encryption = 'scram-sha-256'\n"
             << "log_min_messages = warning\n";
    }
    {
        std::ofstream hba(data_ / "pg_hba.conf", std::ios::trunc);
        hba << "local all all trust\n"
            << "host all " << kPasswordUser << " 127.0.0.1/32 scram-sha-256\n"
            << "host all all 127.0.0.1/32 trust\n"
            << "host replication all 127.0.0.1/32 trust\n";
    }
    start();
    sql(std::string("CREATE ROLE ") + kPasswordUser + " LOGIN REPLICATION PASSWORD '" + kPassword + "'");
}

PostgresServer::~PostgresServer() {
    try {
        if (running_) run_as_postgres({(kBinDir / "pg_ctl").string(), "-D", data_.string(), "-m", "immediate", "-w",
                                       "stop"},
                                      false);
    } catch (...) {
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

void PostgresServer::run_as_postgres(const std::vector<std::string>& argv, bool check) const {
    std::vector<std::string> full;
    if (::geteuid() == 0) full = {"/usr/sbin/runuser", "-u", "postgres", "--"};
    full.insert(full.end(), argv.begin(), argv.end());
    const std::string out = (dir_ / "commands.log").string();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        // The command's output goes to a file, so a failure can show it.
        FILE* f = std::fopen(out.c_str(), "a");
        if (f) {
            ::dup2(::fileno(f), 1);
            ::dup2(::fileno(f), 2);
        }
        std::vector<char*> args;
        for (auto& a : full) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (check && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        std::string cmd;
        for (const auto& a : argv) cmd += a + " ";
        throw std::runtime_error("'" + cmd + "' failed (status " + std::to_string(status) +
                                 "):\n" + read_whole(out) + "\nserver log:\n" + log());
    }
}

std::string PostgresServer::conninfo(std::string_view user, std::string_view database) const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + std::string(user) +
           " dbname=" + std::string(database);
}

std::string PostgresServer::conninfo_with_password(std::string_view password) const {
    return conninfo(kPasswordUser) + " password=" + std::string(password);
}

void PostgresServer::start() {
    run_as_postgres({(kBinDir / "pg_ctl").string(), "-D", data_.string(), "-l", (dir_ / "server.log").string(), "-w",
                     "-t", "60", "start"});
    running_ = true;
}

void PostgresServer::stop() {
    run_as_postgres({(kBinDir / "pg_ctl").string(), "-D", data_.string(), "-m", "fast", "-w", "stop"});
    running_ = false;
}

void PostgresServer::restart() {
    run_as_postgres({(kBinDir / "pg_ctl").string(), "-D", data_.string(), "-l", (dir_ / "server.log").string(), "-m",
                     "fast", "-w", "-t", "60", "restart"});
    running_ = true;
}

pid_t PostgresServer::postmaster_pid() const {
    std::ifstream in(data_ / "postmaster.pid");
    pid_t pid = 0;
    in >> pid;
    return pid;
}

void PostgresServer::kill_postmaster() {
    const pid_t pm = postmaster_pid();
    if (pm <= 0) throw std::runtime_error("no postmaster.pid to kill");
    // Its children, found before it dies (they are reparented after).
    std::vector<pid_t> children;
    for (const auto& e : fs::directory_iterator("/proc")) {
        const std::string name = e.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream st(e.path() / "stat");
        std::string line;
        std::getline(st, line);
        const auto close = line.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(line.substr(close + 2));
        char state = 0;
        pid_t ppid = 0;
        rest >> state >> ppid;
        if (ppid == pm) children.push_back(std::stoi(name));
    }
    if (::kill(pm, SIGKILL) != 0) throw std::runtime_error(std::string("kill postmaster: ") + std::strerror(errno));
    // Its children notice the postmaster's death and exit; a new postmaster refuses to start
    // while any of them still holds the old shared memory.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto any_alive = [&] {
        if (process_alive(pm)) return true;
        for (const pid_t c : children)
            if (process_alive(c)) return true;
        return false;
    };
    while (any_alive()) {
        if (std::chrono::steady_clock::now() > give_up)
            throw std::runtime_error("PostgreSQL's processes outlived the postmaster by 30 s");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    running_ = false;
}

std::vector<std::vector<std::optional<std::string>>> PostgresServer::sql(std::string_view sql,
                                                                         std::string_view database) const {
    const std::string info = "host=" + socket_dir_.string() + " port=" + std::to_string(port_) +
                             " user=postgres dbname=" + std::string(database);
    PGconn* conn = PQconnectdb(info.c_str());
    struct Finish {
        PGconn* c;
        ~Finish() { PQfinish(c); }
    } finish{conn};
    if (PQstatus(conn) != CONNECTION_OK)
        throw std::runtime_error(std::string("test connection to PostgreSQL failed: ") + PQerrorMessage(conn));
    PGresult* res = PQexec(conn, std::string(sql).c_str());
    struct Clear {
        PGresult* r;
        ~Clear() { PQclear(r); }
    } clear{res};
    const auto status = PQresultStatus(res);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK)
        throw std::runtime_error("SQL failed: " + std::string(PQresultErrorMessage(res)) + " in: " + std::string(sql));
    std::vector<std::vector<std::optional<std::string>>> rows;
    for (int r = 0; r < PQntuples(res); ++r) {
        auto& row = rows.emplace_back();
        for (int c = 0; c < PQnfields(res); ++c)
            row.push_back(PQgetisnull(res, r, c) ? std::nullopt : std::optional<std::string>(PQgetvalue(res, r, c)));
    }
    return rows;
}

std::string PostgresServer::scalar(std::string_view sql_text, std::string_view database) const {
    const auto rows = sql(sql_text, database);
    if (rows.empty() || rows[0].empty() || !rows[0][0]) return "";
    return *rows[0][0];
}

std::string PostgresServer::log() const { return read_whole(dir_ / "server.log"); }

}  // namespace funcd::testing
