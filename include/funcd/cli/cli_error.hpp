#pragma once
// The CLI's one error type: a message for the user (naming the problem and the fix) and the
// exit code it ends the command with (docs/cli.md#exit-codes).
#include <stdexcept>
#include <string>

namespace funcd::cli {

// Documented in docs/cli.md; scripts rely on them, so values never change.
enum class ExitCode : int {
    ok = 0,
    function_error = 1,  // the function ran and failed (invoke)
    usage = 2,           // bad arguments, unreadable local files
    unreachable = 3,     // no daemon answered at the endpoint
    auth = 4,            // no token, or the daemon rejected it
    not_found = 5,       // the function (or dead letter) does not exist
    rejected = 6,        // the daemon refused the request as invalid (other 4xx)
    busy = 7,            // throttled or unavailable (429, 503): try again later
    daemon_error = 8,    // the daemon failed (5xx) or answered something unexpected
};

class CliError : public std::runtime_error {
public:
    CliError(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}

    static CliError usage(const std::string& message) { return {ExitCode::usage, message}; }
    static CliError unreachable(const std::string& message) { return {ExitCode::unreachable, message}; }
    static CliError auth(const std::string& message) { return {ExitCode::auth, message}; }
    static CliError not_found(const std::string& message) { return {ExitCode::not_found, message}; }
    static CliError daemon_error(const std::string& message) { return {ExitCode::daemon_error, message}; }

    ExitCode code() const { return code_; }
    int exit_status() const { return static_cast<int>(code_); }

private:
    ExitCode code_;
};

}  // namespace funcd::cli
