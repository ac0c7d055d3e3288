#pragma once
// Debian's chromium, started headless, driven over the DevTools protocol (its
// --remote-debugging-port websocket, spoken with Beast): navigate, evaluate JavaScript in
// the page, take screenshots, and collect every JavaScript exception, console error and
// browser log error (a Content-Security-Policy violation among them) the page causes.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace funcd::testing {

class HeadlessChromium {
public:
    // Starts chromium (`FUNCD_CHROMIUM` or /usr/bin/chromium) with a fresh profile and
    // attaches to its one page. Throws when it cannot (no chromium, no DevTools endpoint).
    HeadlessChromium();
    ~HeadlessChromium();  // kills the browser's process group
    HeadlessChromium(const HeadlessChromium&) = delete;
    HeadlessChromium& operator=(const HeadlessChromium&) = delete;

    static std::filesystem::path binary();

    // A DevTools method on the page (once attached; before, on the browser); its result
    // (throws on a protocol error).
    nlohmann::json call(const std::string& method, const nlohmann::json& params = nlohmann::json::object());
    void navigate(const std::string& url);
    // The value of a JavaScript expression in the page (promises awaited); throws when it throws.
    nlohmann::json evaluate(const std::string& expression);
    // Evaluates `expression` every 100 ms until it is truthy; false after `timeout`.
    bool wait_for(const std::string& expression, std::chrono::milliseconds timeout = std::chrono::seconds(15));
    // A PNG of the page as it is now.
    void screenshot(const std::filesystem::path& png);

    // Every exception, console.error and error log entry so far, one line each.
    const std::vector<std::string>& errors() const { return errors_; }

private:
    struct Socket;
    void on_event(const nlohmann::json& message);

    pid_t pid_ = -1;
    std::filesystem::path profile_;
    std::unique_ptr<Socket> socket_;
    std::string session_;  // the page's DevTools session
    int next_id_ = 1;
    std::vector<std::string> errors_;
};

}  // namespace funcd::testing
