# Module discovery, the dependency graph, and the per-module fences.
#
# Each modules/<dir>/module.cmake calls bh_module(NAME <name> DEPENDS <mods...>).
# That manifest is the single source for: the include path (fence 1), the link
# allow-list and symbol audit (fence 2), and, through the generated manifest
# and scripts/db-setup and scripts/redis-acl, the Postgres roles (fence 3) and
# the Redis ACL users (fence 4).

include(${CMAKE_CURRENT_LIST_DIR}/ModuleGraph.cmake)

macro(bh_module)
  cmake_parse_arguments(_BHM "" "NAME" "DEPENDS" ${ARGN})
  if(NOT _BHM_NAME)
    message(FATAL_ERROR "bh_module() needs NAME (in ${CMAKE_CURRENT_LIST_FILE})")
  endif()
  list(APPEND BH_MODULES ${_BHM_NAME})
  set(BH_DEPS_${_BHM_NAME} ${_BHM_DEPENDS})
  get_filename_component(BH_DIR_${_BHM_NAME} ${CMAKE_CURRENT_LIST_FILE} DIRECTORY)
endmacro()

function(bh_discover_modules root)
  file(GLOB manifests CONFIGURE_DEPENDS ${root}/*/module.cmake)
  set(BH_MODULES "")
  foreach(f IN LISTS manifests)
    include(${f})
  endforeach()
  bh_graph_order("${BH_MODULES}" ordered)   # fails on unknown deps and cycles
  set(BH_MODULES_ORDERED ${ordered} PARENT_SCOPE)
  set(public_includes "")
  set(manifest_rows "")
  foreach(m IN LISTS BH_MODULES)
    set(BH_DEPS_${m} ${BH_DEPS_${m}} PARENT_SCOPE)
    set(BH_DIR_${m} ${BH_DIR_${m}} PARENT_SCOPE)
    list(APPEND public_includes ${BH_DIR_${m}}/include)
  endforeach()
  foreach(m IN LISTS ordered)
    list(JOIN BH_DEPS_${m} " " deps)
    string(APPEND manifest_rows "    {\"${m}\", \"${deps}\"},\n")
  endforeach()
  set(BH_MODULE_PUBLIC_INCLUDES ${public_includes} PARENT_SCOPE)
  # The manifest compiled into the binary: `bulkhead modules`, the migration
  # order and the Postgres grants all read it.
  set(out ${CMAKE_BINARY_DIR}/generated/manifest.c)
  file(WRITE ${out}.tmp
"/* Generated from modules/<name>/module.cmake by cmake/BulkheadModules.cmake. */
#include \"manifest.h\"

const struct bh_manifest_entry bh_manifest[] = {
${manifest_rows}};
const unsigned bh_manifest_count = sizeof bh_manifest / sizeof bh_manifest[0];
")
  configure_file(${out}.tmp ${out} COPYONLY)
  set(BH_MANIFEST_C ${out} PARENT_SCOPE)
endfunction()

# A part's Lua scripts (DIR/*.lua), embedded as struct bh_redis_script
# PREFIX lua_<name> by cmake/embed-lua. Sets OUT_C to the generated source
# (empty when the part has no script) and OUT_INC to the directory of its
# header, lua_scripts.h.
function(bh_embed_lua prefix dir tag out_c out_inc)
  file(GLOB lua CONFIGURE_DEPENDS ${dir}/*.lua)
  set(gen ${CMAKE_BINARY_DIR}/generated/lua/${tag})
  if(NOT lua)
    set(${out_c} "" PARENT_SCOPE)
    set(${out_inc} "" PARENT_SCOPE)
    return()
  endif()
  add_custom_command(
    OUTPUT ${gen}/lua_scripts.c ${gen}/lua_scripts.h
    COMMAND ${BH_PYTHON3} ${CMAKE_SOURCE_DIR}/cmake/embed-lua ${prefix} ${gen} ${lua}
    DEPENDS ${lua} ${CMAKE_SOURCE_DIR}/cmake/embed-lua
    COMMENT "Embedding the Lua scripts of ${tag}" VERBATIM)
  set(${out_c} ${gen}/lua_scripts.c PARENT_SCOPE)
  set(${out_inc} ${gen} PARENT_SCOPE)
endfunction()

# Seal the platform (cmake/seal-platform): sets BH_PLATFORM_SEALED, the object
# every module's audit checks its platform calls against.
function(bh_seal_platform)
  set(fence ${CMAKE_BINARY_DIR}/fence)
  set(sealed ${fence}/platform.sealed.o)
  file(GLOB headers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/platform/include/platform/*.h)
  file(GLOB private CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/platform/src/*.h
                                      ${CMAKE_SOURCE_DIR}/platform/src/*.c)
  list(JOIN BH_MODULES "," all_csv)
  add_custom_command(
    OUTPUT ${sealed} ${fence}/platform.syms
    COMMAND ${CMAKE_SOURCE_DIR}/cmake/seal-platform
            --include ${CMAKE_SOURCE_DIR}/platform/include --src ${CMAKE_SOURCE_DIR}/platform/src
            --modules=${all_csv} --fence-dir ${fence}
            -- $<TARGET_OBJECTS:bh_platform_objs>
    DEPENDS $<TARGET_OBJECTS:bh_platform_objs> bh_platform_objs ${headers} ${private}
            ${CMAKE_SOURCE_DIR}/cmake/seal-platform
    COMMAND_EXPAND_LISTS
    COMMENT "Sealing the platform" VERBATIM)
  set(BH_PLATFORM_SEALED ${sealed} PARENT_SCOPE)
endfunction()

# Compile one module against exactly what it may see, then seal it.
function(bh_add_module m)
  set(dir ${BH_DIR_${m}})
  file(GLOB srcs CONFIGURE_DEPENDS ${dir}/src/*.c)
  bh_embed_lua(${m}__ ${dir}/src ${m} lua_c lua_inc)
  set(objlib bh_mod_${m})
  add_library(${objlib} OBJECT ${srcs} ${lua_c})
  # Fence 1: own src/ and include/ (and its embedded Lua scripts), the
  # platform, declared dependencies only.
  set(incs ${dir}/src ${dir}/include ${lua_inc} ${CMAKE_SOURCE_DIR}/platform/include)
  foreach(d IN LISTS BH_DEPS_${m})
    list(APPEND incs ${BH_DIR_${d}}/include)
  endforeach()
  target_include_directories(${objlib} PRIVATE ${incs})
  target_compile_definitions(${objlib} PRIVATE BH_MODULE_NAME="${m}")
  target_link_libraries(${objlib} PRIVATE PkgConfig::DEPS)
  list(JOIN incs ";" incs_joined)
  file(WRITE ${CMAKE_BINARY_DIR}/fence/${m}.includes "${incs_joined}\n")

  set(fence ${CMAKE_BINARY_DIR}/fence)
  set(sealed ${fence}/${m}.sealed.o)
  set(dep_outputs "")
  foreach(d IN LISTS BH_DEPS_${m})
    list(APPEND dep_outputs ${fence}/${d}.sealed.o)
  endforeach()
  list(JOIN BH_DEPS_${m} "," deps_csv)
  list(JOIN BH_MODULES "," all_csv)
  add_custom_command(
    OUTPUT ${sealed} ${fence}/${m}.syms
    COMMAND ${CMAKE_SOURCE_DIR}/cmake/seal-module
            --name ${m} --header ${dir}/include/${m}/${m}.h --src ${dir}/src
            --deps=${deps_csv} --modules=${all_csv} --fence-dir ${fence}
            -- $<TARGET_OBJECTS:${objlib}>
    DEPENDS $<TARGET_OBJECTS:${objlib}> ${objlib} ${dir}/include/${m}/${m}.h
            ${CMAKE_SOURCE_DIR}/cmake/seal-module ${dep_outputs} ${fence}/platform.sealed.o
    COMMAND_EXPAND_LISTS
    COMMENT "Sealing module ${m}" VERBATIM)
  set(BH_SEALED_OBJECTS ${BH_SEALED_OBJECTS} ${sealed} PARENT_SCOPE)
endfunction()
