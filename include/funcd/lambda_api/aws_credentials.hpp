#pragma once
// The key pairs Lambda's API accepts. One is the operator's (every operation); the other
// is given to functions that can reach funcd (host network) so they can invoke other
// functions with an AWS SDK, as on Lambda, and may do nothing else.
#include <filesystem>
#include <optional>
#include <string>

#include "funcd/lambda_api/sigv4.hpp"

namespace funcd {

inline constexpr std::string_view kAdminPrincipal = "admin";
inline constexpr std::string_view kInvokerPrincipal = "invoke";

struct AwsCredentials {
    sigv4::Credential admin;
    sigv4::Credential invoker;
    // The account in ARNs: the access key id when it is 12 digits (as LocalStack does),
    // otherwise 000000000000.
    std::string account_id;
};

// The operator's pair from the options when both are given (one alone is an error), else
// from DATA_DIR/aws-credentials, which is created (mode 0600, AWS's shared-credentials
// format, profile [funcd]) with a new random pair at the first start. The invoke-only pair
// is derived from the operator's secret, so it survives restarts without being stored.
// Throws std::runtime_error naming the file or option.
AwsCredentials load_or_create_aws_credentials(const std::filesystem::path& data_dir,
                                              const std::optional<std::string>& access_key_id,
                                              const std::optional<std::string>& secret_access_key);

}  // namespace funcd
