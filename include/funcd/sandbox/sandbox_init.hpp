#pragma once
// funcd-init: the program that is PID 1 of every sandbox. The sandbox's first process (a
// clone of the daemon) contains itself and then execs funcd-init, so what lives on in the
// sandbox holds nothing of the daemon: not its memory (the API token, other functions'
// environments), not its command line, not its environment. funcd-init makes itself
// non-dumpable first (its /proc files then belong to a uid the worker is not, and ptrace
// needs a capability the worker lacks), whatever fs.suid_dumpable says; starts the runtime;
// reaps every orphan of the namespace; and when the runtime ends passes its wait status
// on to the daemon and exits, which makes the kernel kill whatever is left.
//
// Its command line (all numbers are descriptors it inherited):
//   funcd-init <sync> <exit-status> <runtime-api|-1> <program> [arguments...]
//   funcd-init -1 <exit-status> <runtime-api|-1> --adopt <pid>
// The second form is for a runtime forked from a template (sandbox_child.hpp): the
// sandbox's first process forked it, then exec'd funcd-init, whose child it therefore is.
// That process closed its sync socket first (the runtime reports on its own copy).
// <sync> is the child's end of the launcher's socketpair (see sync_channel.hpp): a failed
// start of the runtime is reported on it as "execve <program>: errno N", and its closing
// tells the daemon the runtime was exec'd. <exit-status> receives the runtime's wait
// status (an int). <runtime-api> stays open in the runtime (FUNCD_RUNTIME_API_FD). The
// runtime gets funcd-init's environment, which is the worker's and nothing else.
#include <filesystem>
#include <string>

namespace funcd {

inline constexpr const char* kSandboxInitName = "funcd-init";
// The exit status of funcd-init when it could not start the runtime (as a shell's "found
// but not executable"), and of the launcher's child when a containment step failed.
inline constexpr int kSandboxStartFailed = 126;
// The arguments before the runtime's own argv.
inline constexpr int kSandboxInitFixedArgs = 4;
// In place of the runtime's program: the runtime is the child whose pid follows.
inline constexpr const char* kSandboxInitAdopt = "--adopt";
// The runtime's telemetry descriptor: the write end of a pipe the daemon reads framed log
// records from (_LAMBDA_TELEMETRY_LOG_FD, telemetry_frames.hpp), at this number in every
// worker, sandboxed or not. 4: the first after stdio and the Runtime API connection of an
// unsandboxed worker (3). funcd-init closes its own copy once the runtime runs.
inline constexpr int kTelemetryLogFd = 4;

// Where funcd-init is: `configured` when given, else next to the running program, else
// where an installation keeps it relative to the program (install_layout.hpp), else where
// this build put it. Empty when none of them exists; `looked` then lists the places.
std::filesystem::path find_sandbox_init(const std::filesystem::path& configured, std::string* looked);
// The same, as if the running program were `self`.
std::filesystem::path find_sandbox_init(const std::filesystem::path& configured, const std::filesystem::path& self,
                                        std::string* looked);

}  // namespace funcd
