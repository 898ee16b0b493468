/*
 * cuda13_compat.h: lets gorgonia.org/cu v0.9.6 (unmodified) compile against CUDA 13 headers.
 *
 * Use it by force-including it into every cgo compilation unit:
 *
 *   CGO_CFLAGS="-include $PWD/kernels/cuda/compat/cuda13_compat.h" \
 *     bash .gpu/remote.sh go test -tags cuda -count=1 ./kernels/cuda/...
 *
 * (.gpu/remote.sh keeps a CGO_CFLAGS it is given and adds -I$CUDA_HOME/include.)
 *
 * 1. cuCtxCreate. gorgonia.org/cu calls cuCtxCreate(&ctx, flags, dev) (three arguments). CUDA 13's
 *    cuda.h maps cuCtxCreate to cuCtxCreate_v4(CUcontext*, CUctxCreateParams*, unsigned, CUdevice).
 *    The driver still exports the three-argument cuCtxCreate_v2, so we point the name back at it.
 *    Our backend never creates contexts (it retains the primary context); this only makes the
 *    package compile.
 * 2. Texture and surface references (cuTexRef*, cuSurfRef*, cuModuleGetTexRef/SurfRef), wrapped by
 *    gorgonia.org/cu's texref.go/surfref.go, were deprecated in CUDA 11/12 and may be gone from
 *    CUDA 13's header. If the build reports "could not determine kind of name for C.cuTexRef…"
 *    (or cuSurfRef…/cuModuleGetTexRef), add -DHYBRID_CU_STUB_TEXREF to CGO_CFLAGS: static stubs
 *    returning CUDA_ERROR_NOT_SUPPORTED are declared below (our code never calls them). If the
 *    types CUtexref/CUsurfref are gone too, also add -DHYBRID_CU_DECLARE_TEXREF_TYPES.
 *
 * 3. cuMemAdvise, cuMemPrefetchAsync, cuGraphGetEdges, cuGraphAddDependencies: see below (automatic).
 * 4. Shared-memory bank configuration calls: opt-in stubs, -DHYBRID_CU_STUB_SHMEMCONFIG.
 *
 * Nothing here was compiled against a real CUDA 13 installation yet (no GPU machine in the
 * session that wrote it): the first GPU run should check it, and bring back the compiler's
 * exact errors if it is not enough.
 */
#ifndef HYBRID_CUDA13_COMPAT_H
#define HYBRID_CUDA13_COMPAT_H

#include <cuda.h>

#if defined(CUDA_VERSION) && CUDA_VERSION >= 13000

#ifdef cuCtxCreate
#undef cuCtxCreate
#endif
CUresult CUDAAPI cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev);
#define cuCtxCreate cuCtxCreate_v2

/* 3. Unified-memory and graph calls whose unversioned names CUDA 13 maps (by macro) to new
 *    signatures: cuMemAdvise/cuMemPrefetchAsync now take a CUmemLocation, cuGraphGetEdges/
 *    cuGraphAddDependencies gained edge data. gorgonia.org/cu calls the old forms; the driver keeps
 *    exporting the old symbols for binaries built against CUDA 12, so when the name is a macro we
 *    point it back at the old symbol (declared here with its old prototype). */
#ifdef cuMemAdvise
#undef cuMemAdvise
CUresult CUDAAPI cuMemAdvise(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUdevice device);
#endif
#ifdef cuMemPrefetchAsync
#undef cuMemPrefetchAsync
CUresult CUDAAPI cuMemPrefetchAsync(CUdeviceptr devPtr, size_t count, CUdevice dstDevice, CUstream hStream);
#endif
#ifdef cuGraphGetEdges
#undef cuGraphGetEdges
CUresult CUDAAPI cuGraphGetEdges(CUgraph hGraph, CUgraphNode *from, CUgraphNode *to, size_t *numEdges);
#endif
#ifdef cuGraphAddDependencies
#undef cuGraphAddDependencies
CUresult CUDAAPI cuGraphAddDependencies(CUgraph hGraph, const CUgraphNode *from, const CUgraphNode *to, size_t numDependencies);
#endif

/* 4. Shared-memory bank configuration (cuCtxGet/SetSharedMemConfig, cuFuncSetSharedMemConfig),
 *    deprecated in CUDA 12: with -DHYBRID_CU_STUB_SHMEMCONFIG they become stubs returning
 *    CUDA_ERROR_NOT_SUPPORTED (add -DHYBRID_CU_DECLARE_SHMEMCONFIG_TYPE if CUsharedconfig is gone). */
#ifdef HYBRID_CU_STUB_SHMEMCONFIG
#ifdef HYBRID_CU_DECLARE_SHMEMCONFIG_TYPE
typedef int CUsharedconfig;
#endif
static inline CUresult hybrid_cuCtxGetSharedMemConfig(CUsharedconfig *c) { (void)c; return CUDA_ERROR_NOT_SUPPORTED; }
static inline CUresult hybrid_cuCtxSetSharedMemConfig(CUsharedconfig c) { (void)c; return CUDA_ERROR_NOT_SUPPORTED; }
static inline CUresult hybrid_cuFuncSetSharedMemConfig(CUfunction f, CUsharedconfig c) { (void)f; (void)c; return CUDA_ERROR_NOT_SUPPORTED; }
#define cuCtxGetSharedMemConfig hybrid_cuCtxGetSharedMemConfig
#define cuCtxSetSharedMemConfig hybrid_cuCtxSetSharedMemConfig
#define cuFuncSetSharedMemConfig hybrid_cuFuncSetSharedMemConfig
#endif

#ifdef HYBRID_CU_STUB_TEXREF
#ifdef HYBRID_CU_DECLARE_TEXREF_TYPES
typedef struct CUtexref_st *CUtexref;
typedef struct CUsurfref_st *CUsurfref;
#endif
#define HYBRID_STUB(name, ...) \
  static inline CUresult name(__VA_ARGS__) { return CUDA_ERROR_NOT_SUPPORTED; }
HYBRID_STUB(hybrid_cuModuleGetTexRef, CUtexref *p, CUmodule m, const char *n)
HYBRID_STUB(hybrid_cuModuleGetSurfRef, CUsurfref *p, CUmodule m, const char *n)
HYBRID_STUB(hybrid_cuSurfRefGetArray, CUarray *a, CUsurfref s)
HYBRID_STUB(hybrid_cuSurfRefSetArray, CUsurfref s, CUarray a, unsigned int f)
HYBRID_STUB(hybrid_cuTexRefGetAddress, CUdeviceptr *p, CUtexref t)
HYBRID_STUB(hybrid_cuTexRefGetAddressMode, CUaddress_mode *m, CUtexref t, int d)
HYBRID_STUB(hybrid_cuTexRefGetArray, CUarray *a, CUtexref t)
HYBRID_STUB(hybrid_cuTexRefGetBorderColor, float *c, CUtexref t)
HYBRID_STUB(hybrid_cuTexRefGetFilterMode, CUfilter_mode *m, CUtexref t)
HYBRID_STUB(hybrid_cuTexRefGetFlags, unsigned int *f, CUtexref t)
HYBRID_STUB(hybrid_cuTexRefGetFormat, CUarray_format *f, int *n, CUtexref t)
HYBRID_STUB(hybrid_cuTexRefGetMaxAnisotropy, int *m, CUtexref t)
HYBRID_STUB(hybrid_cuTexRefSetAddress, size_t *o, CUtexref t, CUdeviceptr p, size_t b)
HYBRID_STUB(hybrid_cuTexRefSetAddress2D, CUtexref t, const CUDA_ARRAY_DESCRIPTOR *d, CUdeviceptr p, size_t pitch)
HYBRID_STUB(hybrid_cuTexRefSetAddressMode, CUtexref t, int d, CUaddress_mode m)
HYBRID_STUB(hybrid_cuTexRefSetArray, CUtexref t, CUarray a, unsigned int f)
HYBRID_STUB(hybrid_cuTexRefSetBorderColor, CUtexref t, float *c)
HYBRID_STUB(hybrid_cuTexRefSetFilterMode, CUtexref t, CUfilter_mode m)
HYBRID_STUB(hybrid_cuTexRefSetFlags, CUtexref t, unsigned int f)
HYBRID_STUB(hybrid_cuTexRefSetFormat, CUtexref t, CUarray_format f, int n)
HYBRID_STUB(hybrid_cuTexRefSetMaxAnisotropy, CUtexref t, unsigned int m)
HYBRID_STUB(hybrid_cuTexRefSetMipmapFilterMode, CUtexref t, CUfilter_mode m)
HYBRID_STUB(hybrid_cuTexRefSetMipmapLevelBias, CUtexref t, float b)
HYBRID_STUB(hybrid_cuTexRefSetMipmapLevelClamp, CUtexref t, float lo, float hi)
#undef HYBRID_STUB
#define cuModuleGetTexRef hybrid_cuModuleGetTexRef
#define cuModuleGetSurfRef hybrid_cuModuleGetSurfRef
#define cuSurfRefGetArray hybrid_cuSurfRefGetArray
#define cuSurfRefSetArray hybrid_cuSurfRefSetArray
#define cuTexRefGetAddress hybrid_cuTexRefGetAddress
#define cuTexRefGetAddressMode hybrid_cuTexRefGetAddressMode
#define cuTexRefGetArray hybrid_cuTexRefGetArray
#define cuTexRefGetBorderColor hybrid_cuTexRefGetBorderColor
#define cuTexRefGetFilterMode hybrid_cuTexRefGetFilterMode
#define cuTexRefGetFlags hybrid_cuTexRefGetFlags
#define cuTexRefGetFormat hybrid_cuTexRefGetFormat
#define cuTexRefGetMaxAnisotropy hybrid_cuTexRefGetMaxAnisotropy
#define cuTexRefSetAddress hybrid_cuTexRefSetAddress
#define cuTexRefSetAddress2D hybrid_cuTexRefSetAddress2D
#define cuTexRefSetAddressMode hybrid_cuTexRefSetAddressMode
#define cuTexRefSetArray hybrid_cuTexRefSetArray
#define cuTexRefSetBorderColor hybrid_cuTexRefSetBorderColor
#define cuTexRefSetFilterMode hybrid_cuTexRefSetFilterMode
#define cuTexRefSetFlags hybrid_cuTexRefSetFlags
#define cuTexRefSetFormat hybrid_cuTexRefSetFormat
#define cuTexRefSetMaxAnisotropy hybrid_cuTexRefSetMaxAnisotropy
#define cuTexRefSetMipmapFilterMode hybrid_cuTexRefSetMipmapFilterMode
#define cuTexRefSetMipmapLevelBias hybrid_cuTexRefSetMipmapLevelBias
#define cuTexRefSetMipmapLevelClamp hybrid_cuTexRefSetMipmapLevelClamp
#endif /* HYBRID_CU_STUB_TEXREF */

#endif /* CUDA_VERSION >= 13000 */
#endif /* HYBRID_CUDA13_COMPAT_H */
