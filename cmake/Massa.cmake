# Build settings shared by every target: ccache, lld, warnings, protoc.

find_program(MASSA_CCACHE ccache)
if(MASSA_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${MASSA_CCACHE})
endif()

find_program(MASSA_LLD ld.lld)
if(MASSA_LLD)
  add_link_options(-fuse-ld=lld)
endif()

# Warnings for Massa's own code (third-party headers come in as SYSTEM includes).
set(MASSA_WARNINGS -Wall -Wextra -Wpedantic -Wnon-virtual-dtor -Wimplicit-fallthrough)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  list(APPEND MASSA_WARNINGS -Wshadow=local)
endif()

function(massa_target_defaults target)
  target_compile_options(${target} PRIVATE ${MASSA_WARNINGS})
  if(MASSA_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# massa_add_library(name SOURCES ... DEPS ...): a static library of Massa's own code.
function(massa_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  massa_target_defaults(${name})
endfunction()

# massa_add_proto_library(name PROTOS a.proto ... IMPORT_DIRS dir ... [GRPC] [DEPS lib ...])
# Compiles .proto files once into a static library. PROTOS are paths relative to the first
# IMPORT_DIR; generated headers are included as "<relative path>.pb.h".
function(massa_add_proto_library name)
  cmake_parse_arguments(ARG "GRPC" "" "PROTOS;IMPORT_DIRS;DEPS" ${ARGN})
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/gen)
  file(MAKE_DIRECTORY ${out_dir})
  list(GET ARG_IMPORT_DIRS 0 root)
  set(include_args)
  foreach(dir ${ARG_IMPORT_DIRS} ${Protobuf_INCLUDE_DIRS})
    list(APPEND include_args -I${dir})
  endforeach()
  set(srcs)
  set(abs_protos)
  foreach(proto ${ARG_PROTOS})
    string(REGEX REPLACE "\\.proto$" "" base ${proto})
    list(APPEND srcs ${out_dir}/${base}.pb.cc ${out_dir}/${base}.pb.h)
    set(outputs ${out_dir}/${base}.pb.cc ${out_dir}/${base}.pb.h)
    if(ARG_GRPC)
      list(APPEND srcs ${out_dir}/${base}.grpc.pb.cc ${out_dir}/${base}.grpc.pb.h)
      list(APPEND outputs ${out_dir}/${base}.grpc.pb.cc ${out_dir}/${base}.grpc.pb.h)
    endif()
    set(grpc_args)
    if(ARG_GRPC)
      set(grpc_args --grpc_out=${out_dir}
          --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>)
    endif()
    add_custom_command(
      OUTPUT ${outputs}
      COMMAND protobuf::protoc ${include_args} --cpp_out=${out_dir} ${grpc_args} ${root}/${proto}
      DEPENDS ${root}/${proto} protobuf::protoc
      COMMENT "protoc ${proto}"
      VERBATIM)
  endforeach()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} SYSTEM PUBLIC $<BUILD_INTERFACE:${out_dir}>
                                                   $<INSTALL_INTERFACE:include>)
  target_link_libraries(${name} PUBLIC protobuf::libprotobuf ${ARG_DEPS})
  if(ARG_GRPC)
    target_link_libraries(${name} PUBLIC gRPC::grpc++)
  endif()
endfunction()

# massa_add_test(name SOURCES ... DEPS ... [LABELS ...]): one gtest binary, tests discovered
# at test time so the build does not run them.
function(massa_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/test)
  massa_target_defaults(${name})
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST PROPERTIES LABELS "${ARG_LABELS}")
endfunction()

# massa_link_static(target): links `target` (an executable) with the static archives of gRPC
# (without TLS), protobuf, Abseil, RocksDB and their compression libraries, libstdc++ and
# libgcc, and drops unused sections. Only glibc stays shared. The archives come first on the
# link line, inside one group with Massa's own libraries; with --as-needed the shared libraries
# that the imported targets still list are then left out (nothing needs them).
#
# Why: a sidecar idles most of its life, and on Linux a process's resident memory includes
# every page of its shared libraries that the dynamic loader touched (relocations, symbol
# tables) or that fault-around mapped; one static, section-collected binary touches far less
# and starts faster. Measured in BENCHMARKS.md (idle RSS, cold start).
function(massa_link_static target)
  set(lib /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE})
  file(GLOB absl_archives ${lib}/libabsl_*.a)
  set(archives
    ${lib}/libgrpc++_unsecure.a ${lib}/libgrpc_unsecure.a ${lib}/libgpr.a ${lib}/libupb.a
    ${lib}/libaddress_sorting.a ${lib}/libre2.a ${lib}/libcares.a ${lib}/libprotobuf.a
    ${absl_archives} ${lib}/librocksdb.a ${lib}/libsnappy.a ${lib}/liblz4.a ${lib}/libzstd.a
    ${lib}/libbz2.a ${lib}/libz.a ${lib}/libgflags.a ${lib}/libyaml-cpp.a)
  foreach(archive ${archives})
    if(NOT EXISTS ${archive})
      message(FATAL_ERROR "MASSA_STATIC: ${archive} is missing (install the -dev package)")
    endif()
  endforeach()
  get_target_property(own ${target} LINK_LIBRARIES)
  # Imported libraries named directly would be linked as shared objects before the archives.
  list(FILTER own EXCLUDE REGEX "^(yaml-cpp|gRPC::.*|protobuf::.*|absl::.*)$")
  set_target_properties(${target} PROPERTIES LINK_LIBRARIES "")
  target_link_libraries(${target} PRIVATE
    -Wl,--start-group ${own} ${archives} -Wl,--end-group)
  target_link_options(${target} PRIVATE
    -static-libstdc++ -static-libgcc -Wl,--gc-sections -Wl,--as-needed)
endfunction()
