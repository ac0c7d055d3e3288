#pragma once
// A PostgreSQL server of the tests' own: initdb into a fresh temporary directory, started
// with pg_ctl on 127.0.0.1 and a free port (and a unix socket inside the directory),
// wal_level = logical unless asked otherwise, fsync off for speed. Stopped and removed by
// the destructor.
//
// Uses Debian's PostgreSQL 15 (scripts/setup --tests installs it); its absence is a test
// failure, not a skip. initdb and the server refuse to run as root, so when the tests run
// as root (as CI does) they run as the `postgres` user the package creates.
//
// Connections: the superuser `postgres` and any role made with trust, except
// `funcd_pw_user`, whose password `password()` is checked (scram-sha-256).
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace funcd::testing {

class PostgresServer {
public:
    struct Options {
        std::string wal_level = "logical";
    };

    // The role whose password is checked, and that password.
    static constexpr const char* kPasswordUser = "funcd_pw_user";
    static constexpr const char* kPassword = "s3cret-pw-Zq";

    PostgresServer() : PostgresServer(Options{}) {}
    explicit PostgresServer(Options options);
    ~PostgresServer();
    PostgresServer(const PostgresServer&) = delete;
    PostgresServer& operator=(const PostgresServer&) = delete;

    unsigned short port() const { return port_; }
    const std::filesystem::path& directory() const { return dir_; }
    // A libpq connection string over TCP to 127.0.0.1.
    std::string conninfo(std::string_view user = "postgres", std::string_view database = "postgres") const;
    std::string conninfo_with_password(std::string_view password) const;

    void start();
    void stop();     // pg_ctl stop -m fast
    void restart();  // pg_ctl restart -m fast
    // SIGKILL to the postmaster; returns once it and its children are gone (start() then
    // recovers from the crash).
    void kill_postmaster();
    pid_t postmaster_pid() const;

    // Runs `sql` (several statements allowed) as the superuser over the unix socket and
    // returns the rows of the last one (nullopt for NULL). Throws std::runtime_error with
    // the server's message.
    std::vector<std::vector<std::optional<std::string>>> sql(std::string_view sql,
                                                             std::string_view database = "postgres") const;
    // The first column of the first row, or "" when none.
    std::string scalar(std::string_view sql, std::string_view database = "postgres") const;

    // The server's log so far (for failure messages).
    std::string log() const;

private:
    void run_as_postgres(const std::vector<std::string>& argv, bool check = true) const;

    Options options_;
    std::filesystem::path dir_;
    std::filesystem::path data_;
    std::filesystem::path socket_dir_;
    unsigned short port_ = 0;
    bool running_ = false;
};

}  // namespace funcd::testing
