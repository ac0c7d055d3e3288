#pragma once
// Data directories from before versions existed kept one row per function, its current
// version, in funcd.db's `functions` table. Each becomes a record whose $LATEST is that
// version and which has it published under its number, so /v1 goes on reporting the same
// version; the table is dropped once every row is in `store`. Run before the registry loads.
#include <filesystem>

#include "funcd/registry/env_cipher.hpp"
#include "funcd/state/function_store.hpp"

namespace funcd {

void migrate_legacy_function_table(const std::filesystem::path& db_path, FunctionStore& store,
                                   const EnvCipher& env_cipher);

}  // namespace funcd
