#include "funcd/triggers/http_prelude.hpp"

#include <algorithm>

namespace funcd {

HttpPreludeSplitter::Status HttpPreludeSplitter::feed(std::string_view data) {
    if (status_ != Status::need_more) return status_;
    bytes_.append(data);
    const std::string_view all(bytes_);
    const std::string_view delimiter("\0\0\0\0\0\0\0\0", kPreludeDelimiterBytes);
    const std::size_t at = all.find(delimiter, searched_);
    if (at != std::string_view::npos && at <= kMaxPreludeBytes) {
        split_ = at;
        return status_ = Status::done;
    }
    // A delimiter may begin in the last 7 bytes and end in the next piece.
    if (all.size() >= kPreludeDelimiterBytes) searched_ = all.size() - (kPreludeDelimiterBytes - 1);
    if (all.size() > kMaxPreludeBytes + kPreludeDelimiterBytes || at != std::string_view::npos)
        return status_ = Status::too_long;
    return status_;
}

bool is_http_integration_content_type(std::string_view content_type) {
    const std::string_view type = content_type.substr(0, content_type.find(';'));
    const auto first = type.find_first_not_of(" \t");
    const auto last = type.find_last_not_of(" \t");
    if (first == std::string_view::npos) return false;
    const std::string_view trimmed = type.substr(first, last - first + 1);
    return trimmed.size() == kHttpIntegrationContentType.size() &&
           std::equal(trimmed.begin(), trimmed.end(), kHttpIntegrationContentType.begin(),
                      [](char a, char b) { return (a >= 'A' && a <= 'Z' ? a + 32 : a) == b; });
}

}  // namespace funcd
