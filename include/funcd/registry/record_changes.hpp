#pragma once
// The changes of a function record that both APIs make, with Lambda's rules: a new
// $LATEST, publishing it, deleting a version. They run inside Registry::update.
#include <optional>
#include <string>

#include "funcd/registry/registry.hpp"

namespace funcd {

// Makes `config` (and `code`, if given; else $LATEST keeps its code) the function's new
// $LATEST, creating the record if the function does not exist yet. Validates the settings
// and that the code can run them (`check`). Throws ApiError(400) and changes nothing on a
// bad setting or code.
void set_latest(RecordChange& change, FunctionConfig config, const StoredCode* code, CodeCheck check);

// Publishes $LATEST as the next version number and returns it. With `reuse_unchanged`
// (Lambda's PublishVersion), a $LATEST whose code and settings equal the newest published
// version's returns that version instead. `description` replaces $LATEST's in the version.
FunctionPtr publish_latest(FunctionRecord& record, const std::optional<std::string>& description,
                           bool reuse_unchanged);

// Deletes published version `number`: its provisioned concurrency, URL and policy go with
// it. Throws ApiError(409) while an alias routes to it; returns false if it does not exist.
bool delete_version(FunctionRecord& record, std::int64_t number);

// The names of the aliases that route to version `number`.
std::vector<std::string> aliases_of(const FunctionRecord& record, std::int64_t number);

}  // namespace funcd
