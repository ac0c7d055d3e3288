#pragma once
// Runtime identifiers: funcd's own (`python3`, `nodejs`, `provided`) and Lambda's
// (`python3.12`, `nodejs20.x`, `provided.al2023`, ...), which family of runtime runs each, and how an identifier this
// host does not run is refused. Lambda's identifiers are case-sensitive, and so are ours.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace funcd {

enum class Runtime { python3, nodejs, provided };

std::string_view to_string(Runtime r);

// The family that runs `id`, for every identifier funcd accepts; nullopt otherwise.
std::optional<Runtime> runtime_family(std::string_view id);

// For `python3.X`: "3.X"; nullopt for `python3` (the host's default Python) and others.
std::optional<std::string> requested_python_version(std::string_view id);

// For `nodejsNN.x`: NN, the major version of Node.js it asks for; nullopt for `nodejs`
// (the host's Node.js, whatever its version) and others.
std::optional<int> requested_node_major(std::string_view id);

// Identifiers Lambda has retired for creating and updating functions (botocore's
// service model lists them in the Runtime enum; AWS refuses them with a deprecation message).
bool is_deprecated_runtime(std::string_view id);

// Every identifier funcd accepts, in the order error messages list them.
const std::vector<std::string>& supported_runtime_ids();
// The same as one line: "python3, python3.9, ...".
std::string supported_runtime_list();

// Lambda's architectures; funcd runs only the host's.
std::string_view host_architecture();  // "x86_64" or "arm64"

}  // namespace funcd
