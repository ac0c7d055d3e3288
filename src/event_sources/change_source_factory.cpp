#include "funcd/event_sources/change_source_factory.hpp"

#include <stdexcept>

#include "funcd/common/api_error.hpp"

namespace funcd {
namespace {

constexpr const char* kUnavailable =
    "the PostgreSQL change source is not available in this build of funcd, so a mapping of type \"postgres\" "
    "cannot be created";

}  // namespace

void UnavailableSourceFactory::provision(const MappingConfig&) {
    throw ApiError(501, "NotImplementedException", kUnavailable);
}

std::unique_ptr<ChangeSource> UnavailableSourceFactory::make(const MappingConfig&) {
    throw std::runtime_error(kUnavailable);
}

}  // namespace funcd
