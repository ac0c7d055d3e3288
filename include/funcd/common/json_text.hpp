#pragma once
// A JSON document as the text of an answer. Answers quote what clients and functions sent (a
// path, a header, a query parameter, a file name in a zip, an error body), which need not be
// UTF-8 while JSON strings must be: such bytes become U+FFFD. nlohmann::json's own dump()
// throws on them instead, and an exception while building an answer leaves it unanswered
// (or, thrown out of an event loop or a pool thread, stops the daemon).
#include <string>

#include <nlohmann/json.hpp>

namespace funcd {

std::string json_text(const nlohmann::json& doc);

}  // namespace funcd
