#pragma once
// OpenAPI 3.0 description of the REST routes, generated from the same descriptors the routes come
// from: one path item per template, path and query parameters, request bodies and response
// schemas from the message descriptors (components/schemas keyed by full message name), and the
// error body of each face. Stateless.

#include <string>

#include "gateway/route_table.h"

namespace submarine::gateway {

// Paths are written with each variable's pattern expanded: "/v1/{name=projects/*/environments/*}"
// becomes "/v1/projects/{project}/environments/{environment}" (the `*` after a literal takes the
// literal's singular name) and a plain "{name}" stays "{name}".
std::string OpenApiPath(const api::PathTemplate& path);

// The whole document as JSON text.
std::string GenerateOpenApi(const RouteTable& routes, const std::string& title,
                            const std::string& version);

}  // namespace submarine::gateway
