// `massa new NAME`: writes the skeleton of a function project, to be built against the
// installed SDK (find_package(MassaSdk)) outside this repository.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace massa::cli {

// Writes a project named `name` into `directory` (created when missing): a .proto with a value
// entity and an action (with google.api.http rules), main.cc with their handlers, a
// CMakeLists.txt using the installed SDK, a README with the commands to build it and run it
// beside `massa serve`, and a .gitignore.
// Errors (nothing written): INVALID_ARGUMENT when `name` is not a lower-case identifier
// ([a-z][a-z0-9_]*, at most 40 characters: it becomes the proto package and a C++ namespace);
// ALREADY_EXISTS when `directory` exists and is not empty or is not a directory;
// UNAVAILABLE when a file cannot be written.
[[nodiscard]] absl::Status NewProject(const std::string& name, const std::string& directory);

}  // namespace massa::cli
