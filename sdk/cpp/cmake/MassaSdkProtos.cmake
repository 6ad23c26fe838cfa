# massa_sdk_add_protos(TARGET PROTOS a.proto ... [IMPORT_DIRS dir ...])
#
# Compiles your .proto files (paths relative to the first IMPORT_DIR, default
# ${CMAKE_CURRENT_SOURCE_DIR}/proto) into a static library TARGET, with Massa's own .proto files
# (massa/protocol/v1/options.proto for entity keys, google/api/annotations.proto for HTTP
# rules) on the import path. Include the generated headers as "<path>.pb.h".
#
# Example:
#   massa_sdk_add_protos(counter_proto PROTOS counter/v1/counter.proto)
#   target_link_libraries(counter-function PRIVATE counter_proto massa::sdk)
function(massa_sdk_add_protos target)
  cmake_parse_arguments(ARG "" "" "PROTOS;IMPORT_DIRS" ${ARGN})
  if(NOT ARG_IMPORT_DIRS)
    set(ARG_IMPORT_DIRS ${CMAKE_CURRENT_SOURCE_DIR}/proto)
  endif()
  list(GET ARG_IMPORT_DIRS 0 root)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${target}_gen)
  file(MAKE_DIRECTORY ${out})
  set(includes)
  foreach(dir ${ARG_IMPORT_DIRS} ${MASSA_SDK_PROTO_DIR} ${Protobuf_INCLUDE_DIRS})
    list(APPEND includes -I${dir})
  endforeach()
  set(sources)
  foreach(proto ${ARG_PROTOS})
    string(REGEX REPLACE "\\.proto$" "" base ${proto})
    add_custom_command(
      OUTPUT ${out}/${base}.pb.cc ${out}/${base}.pb.h
      COMMAND protobuf::protoc ${includes} --cpp_out=${out} ${root}/${proto}
      DEPENDS ${root}/${proto}
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND sources ${out}/${base}.pb.cc ${out}/${base}.pb.h)
  endforeach()
  add_library(${target} STATIC ${sources})
  target_include_directories(${target} SYSTEM PUBLIC ${out})
  target_link_libraries(${target} PUBLIC massa::sdk massa::googleapis_proto protobuf::libprotobuf)
endfunction()
