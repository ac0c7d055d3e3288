#include "funcd/logs/log_line.hpp"

#include <cctype>

#include "funcd/common/text.hpp"
#include "funcd/logs/log_levels.hpp"

namespace funcd {
namespace {

constexpr std::string_view kPlatformTag = "platform";

// The tag at the start of `rest` followed by a tab: its length (without the tab), or 0.
std::size_t tag_length(std::string_view rest, LogStream& stream, LogLevel& level) {
    const auto tab = rest.find('\t');
    if (tab == std::string_view::npos || tab == 0 || tab > kPlatformTag.size() + 1 + 5) return 0;
    std::string_view tag = rest.substr(0, tab);
    LogStream s = LogStream::function;
    if (tag.starts_with(kPlatformTag)) {
        s = LogStream::platform;
        tag.remove_prefix(kPlatformTag.size());
        if (tag.empty()) {
            stream = s;
            level = LogLevel::none;
            return tab;
        }
        if (tag.front() != '.') return 0;
        tag.remove_prefix(1);
    }
    const auto tagged = parse_log_level(tag);
    if (!tagged) return 0;
    stream = s;
    level = *tagged;
    return tab;
}

bool starts_with_tag(std::string_view message) {
    LogStream s;
    LogLevel l;
    return tag_length(message, s, l) > 0;
}

// U+2424 SYMBOL FOR NEWLINE stands for a line feed; U+241B SYMBOL FOR ESCAPE makes the
// next symbol literal ("\u241B\u2424", "\u241B\u241B") or, followed by '.', stands for
// nothing. Visible in a terminal, and as good as absent from real output, so the rest of a
// message (JSON's own \n escapes, backslashes, carriage returns) is written as it is.
constexpr std::string_view kNewline = "\xE2\x90\xA4";
constexpr std::string_view kEscape = "\xE2\x90\x9B";
constexpr std::string_view kNothing = "\xE2\x90\x9B.";
constexpr std::string_view kSpecial = "\n\xE2";  // what the fast path looks for

void append_request_id(std::string& out, std::string_view request_id) {
    if (request_id.empty()) {
        out += '-';
        return;
    }
    // funcd makes request ids (UUIDs); anything that would break the columns is replaced.
    for (char c : request_id)
        out += (c == '\t' || c == '\n' || c == '\r' || c == ' ' || c == '\\') ? '_' : c;
}

}  // namespace

std::optional<LogLevel> parse_level(std::string_view text) {
    // Python's logging spells it WARNING.
    if (iequals(text, "WARNING")) return LogLevel::warn;
    return parse_log_level(text, /*any_case=*/true);
}

std::string_view stream_name(LogStream stream) {
    return stream == LogStream::platform ? "platform" : "function";
}

void append_log_prefix(std::string& out, std::string_view stamp, std::string_view request_id, LogStream stream,
                       LogLevel level) {
    out += stamp;
    out += '\t';
    append_request_id(out, request_id);
    out += '\t';
    if (stream == LogStream::platform) {
        out += kPlatformTag;
        if (level != LogLevel::none) {
            out += '.';
            out += to_string(level);
        }
        out += '\t';
    } else if (level != LogLevel::none) {
        out += to_string(level);
        out += '\t';
    }
}

void append_escaped_message(std::string& out, std::string_view m, bool tagged) {
    if (!tagged && starts_with_tag(m)) out += kNothing;
    // Most messages need nothing: appended whole.
    if (m.find_first_of(kSpecial) == std::string_view::npos) {
        out += m;
        return;
    }
    for (std::size_t i = 0; i < m.size(); ++i) {
        const std::string_view rest = m.substr(i);
        if (m[i] == '\n') {
            out += kNewline;
        } else if (rest.starts_with(kNewline) || rest.starts_with(kEscape)) {
            out += kEscape;
            out += rest.substr(0, 3);
            i += 2;
        } else {
            out += m[i];
        }
    }
}

void escape_message_in_place(std::string& out, std::size_t from, bool tagged) {
    const std::string_view written = std::string_view(out).substr(from);
    if (written.find_first_of(kSpecial) == std::string_view::npos && (tagged || !starts_with_tag(written))) return;
    const std::string raw(written);
    out.resize(from);
    append_escaped_message(out, raw, tagged);
}

void append_log_line(std::string& out, std::string_view stamp, std::string_view request_id, LogStream stream,
                     LogLevel level, std::string_view message) {
    append_log_prefix(out, stamp, request_id, stream, level);
    append_escaped_message(out, message, stream == LogStream::platform || level != LogLevel::none);
}

std::string unescape_message(std::string_view e) {
    std::string out;
    out.reserve(e.size());
    for (std::size_t i = 0; i < e.size(); ++i) {
        const std::string_view rest = e.substr(i);
        if (rest.starts_with(kNewline)) {
            out += '\n';
            i += 2;
        } else if (rest.starts_with(kEscape)) {
            const std::string_view next = rest.substr(3);
            if (next.starts_with(kNewline) || next.starts_with(kEscape)) {
                out += next.substr(0, 3);
                i += 5;
            } else if (next.starts_with('.')) {
                i += 3;
            } else {
                out += kEscape;  // not an escape: the symbol is the message's own
                i += 2;
            }
        } else {
            out += e[i];
        }
    }
    return out;
}

std::optional<LogLine> parse_log_line(std::string_view line) {
    const auto tab = line.find('\t');
    if (tab == std::string_view::npos || tab < 20 || !std::isdigit(static_cast<unsigned char>(line[0])))
        return std::nullopt;
    LogLine r;
    r.stamp = line.substr(0, tab);
    std::string_view rest = line.substr(tab + 1);
    const auto tab2 = rest.find('\t');
    const std::string_view column = rest.substr(0, tab2);
    if (column.find(' ') != std::string_view::npos || column.empty()) {
        // "<time>\t<text>": a platform line of a log from before records carried their request
        // id; the id is taken from the text where it names one.
        r.stream = LogStream::platform;
        r.escaped_message = rest;
        constexpr std::string_view kLabel = "RequestId: ";
        if (auto at = column.find(kLabel); at != std::string_view::npos) {
            auto id = column.substr(at + kLabel.size());
            r.request_id = id.substr(0, id.find_first_of(" \t"));
        }
        return r;
    }
    r.request_id = column == "-" ? std::string_view() : column;
    if (tab2 == std::string_view::npos) return r;  // an empty message, written before tags
    rest.remove_prefix(tab2 + 1);
    if (const auto n = tag_length(rest, r.stream, r.level); n > 0) rest.remove_prefix(n + 1);
    r.escaped_message = rest;
    return r;
}

std::string_view log_line_request_id(std::string_view line) {
    const auto tab = line.find('\t');
    if (tab == std::string_view::npos) return {};
    std::string_view rest = line.substr(tab + 1);
    const std::string_view column = rest.substr(0, rest.find('\t'));
    if (column == "-" || column.find(' ') != std::string_view::npos) return {};
    return column;
}

}  // namespace funcd
