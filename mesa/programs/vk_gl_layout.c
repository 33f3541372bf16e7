/* SPDX-License-Identifier: MIT */
/*
 * vk_gl_layout: Vulkan images exported as memory fds and imported by GL, one case at a time, so
 * the layout the exporter (turnip) chose and the layout the importer (freedreno) built can be
 * compared image by image (ci/interop layouts, docs/mesa.md "Vulkan-to-GL layouts and scanout
 * flips").
 *
 * Each case: a 2D image of one format, tiling, usage and size, in a dedicated allocation (the
 * path on which turnip stores layout metadata at vkGetMemoryFdKHR and freedreno reads it at
 * import), exported as an opaque fd (what GL_EXT_memory_object_fd takes), imported on a
 * surfaceless EGL context with glImportMemoryFdEXT (dedicated) and glTexStorageMem2DEXT.
 *
 * The program does not print layouts itself: run it with TU_DEBUG=layout and
 * FD_MESA_DEBUG=layout, and both drivers print theirs (fdl_dump_layout) on stderr. It prints a
 * marker line before and after each step, so every layout line falls between the markers of the
 * driver that wrote it:
 *
 *   vk_gl_layout: case N vk-begin {json}   ... turnip's layout ...   vk_gl_layout: case N vk-end {json}
 *   vk_gl_layout: case N gl-begin          ... freedreno's layout ... vk_gl_layout: case N gl-end {json}
 *
 * The vk-end object has vkGetImageSubresourceLayout of level 0 (offset, row pitch, size) and the
 * allocation size; gl-end has the GL error of the import (0 when it worked). Exits non-zero only
 * when the setup (instance, device, EGL context) fails; a case that fails says so and the next
 * one runs.
 *
 * `vk_gl_layout --hostile` runs one case the other way: between export and import it rewrites
 * the exporter's metadata record (GEM_INFO GET/SET_METADATA on the render node) so that its header
 * and checksum stay valid but plane 0 starts past the end of the buffer, as a hostile exporter
 * could; the import must fail with a GL error (gl-end's gl_error), never read outside the buffer.
 * The marker line "case N hostile {json}" says what was stored.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <GLES2/gl2.h>
#include <GLES2/gl2ext.h>
#include <vulkan/vulkan.h>

/* GLES3 values not in gl2.h. */
#define GL_RGBA8 0x8058
#define GL_R8 0x8229
#define GL_RGB565 0x8D62
#define GL_RGBA16F 0x881A
#define GL_DEPTH24_STENCIL8 0x88F0
#define GL_DEPTH_COMPONENT16 0x81A5
#define GL_DEPTH32F_STENCIL8 0x8CAD
#define GL_RGBA8_SNORM 0x8F97
#define GL_RG8 0x822B

struct layout_case {
   const char *name;
   VkFormat vk_format;
   GLenum gl_format;
   uint32_t width, height, levels;
   VkImageTiling tiling;
   VkImageUsageFlags usage;
   VkImageCreateFlags flags;
};

#define SAMPLED_COLOR                                                                           \
   (VK_IMAGE_USAGE_SAMPLED_BIT | VK_IMAGE_USAGE_COLOR_ATTACHMENT_BIT |                           \
    VK_IMAGE_USAGE_TRANSFER_SRC_BIT | VK_IMAGE_USAGE_TRANSFER_DST_BIT)
#define DEPTH (VK_IMAGE_USAGE_SAMPLED_BIT | VK_IMAGE_USAGE_DEPTH_STENCIL_ATTACHMENT_BIT)

static const struct layout_case cases[] = {
   {"rgba8-optimal", VK_FORMAT_R8G8B8A8_UNORM, GL_RGBA8, 256, 256, 1, VK_IMAGE_TILING_OPTIMAL,
    SAMPLED_COLOR, 0},
   {"rgba8-optimal-storage", VK_FORMAT_R8G8B8A8_UNORM, GL_RGBA8, 256, 256, 1,
    VK_IMAGE_TILING_OPTIMAL, SAMPLED_COLOR | VK_IMAGE_USAGE_STORAGE_BIT, 0},
   {"rgba8-optimal-mutable", VK_FORMAT_R8G8B8A8_UNORM, GL_RGBA8, 256, 256, 1,
    VK_IMAGE_TILING_OPTIMAL, SAMPLED_COLOR, VK_IMAGE_CREATE_MUTABLE_FORMAT_BIT},
   {"rgba8-linear", VK_FORMAT_R8G8B8A8_UNORM, GL_RGBA8, 256, 256, 1, VK_IMAGE_TILING_LINEAR,
    SAMPLED_COLOR, 0},
   {"rgba8-optimal-8x8", VK_FORMAT_R8G8B8A8_UNORM, GL_RGBA8, 8, 8, 1, VK_IMAGE_TILING_OPTIMAL,
    SAMPLED_COLOR, 0},
   {"rgba8-optimal-mips", VK_FORMAT_R8G8B8A8_UNORM, GL_RGBA8, 256, 256, 4,
    VK_IMAGE_TILING_OPTIMAL, SAMPLED_COLOR, 0},
   {"rgb565-optimal-300x200", VK_FORMAT_R5G6B5_UNORM_PACK16, GL_RGB565, 300, 200, 1,
    VK_IMAGE_TILING_OPTIMAL, SAMPLED_COLOR, 0},
   {"r8-optimal-100x60", VK_FORMAT_R8_UNORM, GL_R8, 100, 60, 1, VK_IMAGE_TILING_OPTIMAL,
    SAMPLED_COLOR, 0},
   {"rgba16f-optimal", VK_FORMAT_R16G16B16A16_SFLOAT, GL_RGBA16F, 128, 128, 1,
    VK_IMAGE_TILING_OPTIMAL, SAMPLED_COLOR, 0},
   {"d16-optimal", VK_FORMAT_D16_UNORM, GL_DEPTH_COMPONENT16, 160, 160, 1,
    VK_IMAGE_TILING_OPTIMAL, DEPTH, 0},
   {"d24s8-optimal", VK_FORMAT_D24_UNORM_S8_UINT, GL_DEPTH24_STENCIL8, 160, 160, 1,
    VK_IMAGE_TILING_OPTIMAL, DEPTH, 0},
   {"d32s8-optimal", VK_FORMAT_D32_SFLOAT_S8_UINT, GL_DEPTH32F_STENCIL8, 160, 160, 1,
    VK_IMAGE_TILING_OPTIMAL, DEPTH, 0},
   {"rgba8-snorm-optimal", VK_FORMAT_R8G8B8A8_SNORM, GL_RGBA8_SNORM, 256, 256, 1,
    VK_IMAGE_TILING_OPTIMAL, SAMPLED_COLOR, 0},
   {"rg8-optimal", VK_FORMAT_R8G8_UNORM, GL_RG8, 256, 256, 1, VK_IMAGE_TILING_OPTIMAL,
    SAMPLED_COLOR, 0},
};

struct vk {
   VkInstance instance;
   VkPhysicalDevice pdev;
   VkDevice dev;
   PFN_vkGetMemoryFdKHR get_memory_fd;
};

struct gl {
   EGLDisplay dpy;
   EGLContext ctx;
   PFNGLCREATEMEMORYOBJECTSEXTPROC create_memory_objects;
   PFNGLDELETEMEMORYOBJECTSEXTPROC delete_memory_objects;
   PFNGLMEMORYOBJECTPARAMETERIVEXTPROC memory_object_parameteriv;
   PFNGLIMPORTMEMORYFDEXTPROC import_memory_fd;
   PFNGLTEXSTORAGEMEM2DEXTPROC tex_storage_mem_2d;
};

static void marker(int n, const char *step, const char *json)
{
   /* stderr is unbuffered, as the drivers' fprintf(stderr) is: the lines stay in order. */
   fprintf(stderr, "vk_gl_layout: case %d %s%s%s\n", n, step, json ? " " : "", json ? json : "");
}

static int vk_init(struct vk *v)
{
   VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                            .pApplicationName = "vk_gl_layout",
                            .apiVersion = VK_API_VERSION_1_1};
   VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pApplicationInfo = &app};
   if (vkCreateInstance(&ici, NULL, &v->instance) != VK_SUCCESS)
      return -1;
   uint32_t n = 1;
   VkResult r = vkEnumeratePhysicalDevices(v->instance, &n, &v->pdev);
   if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || n == 0)
      return -1;
   float prio = 1.0f;
   VkDeviceQueueCreateInfo q = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                .queueCount = 1,
                                .pQueuePriorities = &prio};
   const char *exts[] = {VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME};
   VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &q,
                             .enabledExtensionCount = 1,
                             .ppEnabledExtensionNames = exts};
   if (vkCreateDevice(v->pdev, &dci, NULL, &v->dev) != VK_SUCCESS)
      return -1;
   v->get_memory_fd = (PFN_vkGetMemoryFdKHR)vkGetDeviceProcAddr(v->dev, "vkGetMemoryFdKHR");
   return v->get_memory_fd ? 0 : -1;
}

static int gl_init(struct gl *g)
{
   PFNEGLGETPLATFORMDISPLAYEXTPROC get_display =
      (PFNEGLGETPLATFORMDISPLAYEXTPROC)eglGetProcAddress("eglGetPlatformDisplayEXT");
   if (!get_display)
      return -1;
   g->dpy = get_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, NULL);
   if (g->dpy == EGL_NO_DISPLAY || !eglInitialize(g->dpy, NULL, NULL) ||
       !eglBindAPI(EGL_OPENGL_ES_API))
      return -1;
   const EGLint attrs[] = {EGL_CONTEXT_MAJOR_VERSION, 3, EGL_NONE};
   g->ctx = eglCreateContext(g->dpy, EGL_NO_CONFIG_KHR, EGL_NO_CONTEXT, attrs);
   if (g->ctx == EGL_NO_CONTEXT ||
       !eglMakeCurrent(g->dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, g->ctx))
      return -1;
   const char *ext = (const char *)glGetString(GL_EXTENSIONS);
   if (!ext || !strstr(ext, "GL_EXT_memory_object_fd"))
      return -1;
   g->create_memory_objects =
      (PFNGLCREATEMEMORYOBJECTSEXTPROC)eglGetProcAddress("glCreateMemoryObjectsEXT");
   g->delete_memory_objects =
      (PFNGLDELETEMEMORYOBJECTSEXTPROC)eglGetProcAddress("glDeleteMemoryObjectsEXT");
   g->memory_object_parameteriv =
      (PFNGLMEMORYOBJECTPARAMETERIVEXTPROC)eglGetProcAddress("glMemoryObjectParameterivEXT");
   g->import_memory_fd = (PFNGLIMPORTMEMORYFDEXTPROC)eglGetProcAddress("glImportMemoryFdEXT");
   g->tex_storage_mem_2d =
      (PFNGLTEXSTORAGEMEM2DEXTPROC)eglGetProcAddress("glTexStorageMem2DEXT");
   return g->create_memory_objects && g->delete_memory_objects &&
                g->memory_object_parameteriv && g->import_memory_fd && g->tex_storage_mem_2d
             ? 0
             : -1;
}

static int mem_type(const struct vk *v, uint32_t bits)
{
   VkPhysicalDeviceMemoryProperties p;
   vkGetPhysicalDeviceMemoryProperties(v->pdev, &p);
   for (uint32_t i = 0; i < p.memoryTypeCount; i++) {
      if ((bits & (1u << i)) &&
          (p.memoryTypes[i].propertyFlags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT))
         return (int)i;
   }
   return -1;
}

/* The msm uAPI and DRM structs this program uses (include/uapi/drm/msm_drm.h, drm.h), spelled
 * out so that it builds with only the Vulkan and GL headers. */
struct msm_gem_info {
   uint32_t handle, info;
   uint64_t value;
   uint32_t len, pad;
};
struct prime_handle {
   uint32_t handle, flags;
   int32_t fd;
};
struct gem_close {
   uint32_t handle, pad;
};
#define MSM_INFO_SET_METADATA 6
#define MSM_INFO_GET_METADATA 7
#define IOCTL_MSM_GEM_INFO _IOWR('d', 0x40 + 0x03, struct msm_gem_info)
#define IOCTL_PRIME_FD_TO_HANDLE _IOWR('d', 0x2e, struct prime_handle)
#define IOCTL_GEM_CLOSE _IOW('d', 0x09, struct gem_close)

/* The record's layout (msm-winsys docs/metadata.md, version 1). */
#define RECORD_SIZE_B 124
#define RECORD_CHECKSUM 16
#define RECORD_PLANE0_OFFSET 68

/* CRC-32C (Castagnoli, reflected, init and final xor ~0) of the record with its checksum field
 * taken as zero. */
static uint32_t record_checksum(const uint8_t *rec, unsigned len)
{
   uint32_t crc = ~0u;
   for (unsigned i = 0; i < len; i++) {
      uint8_t b = (i >= RECORD_CHECKSUM && i < RECORD_CHECKSUM + 4) ? 0 : rec[i];
      crc ^= b;
      for (int k = 0; k < 8; k++)
         crc = (crc >> 1) ^ (0x82f63b78u & -(crc & 1));
   }
   return ~crc;
}

/* Moves plane 0 of the record on the dma-buf `fd` to `offset_B` and fixes the checksum, as a
 * hostile exporter would. Returns 0, or -1 when the buffer has no full record. */
static int corrupt_record(int n, int fd, uint32_t offset_B)
{
   int node = open("/dev/dri/renderD128", O_RDWR);
   struct prime_handle ph = {.fd = fd};
   if (node < 0 || ioctl(node, IOCTL_PRIME_FD_TO_HANDLE, &ph) != 0) {
      if (node >= 0)
         close(node);
      return -1;
   }
   uint8_t rec[128];
   struct msm_gem_info gi = {.handle = ph.handle, .info = MSM_INFO_GET_METADATA};
   int ret = ioctl(node, IOCTL_MSM_GEM_INFO, &gi); /* value 0: the kernel writes len */
   if (ret == 0 && gi.len == RECORD_SIZE_B) {
      gi.value = (uintptr_t)rec;
      ret = ioctl(node, IOCTL_MSM_GEM_INFO, &gi);
   } else {
      ret = -1;
   }
   if (ret == 0) {
      uint32_t was;
      memcpy(&was, rec + RECORD_PLANE0_OFFSET, 4);
      memcpy(rec + RECORD_PLANE0_OFFSET, &offset_B, 4);
      uint32_t crc = record_checksum(rec, RECORD_SIZE_B);
      memcpy(rec + RECORD_CHECKSUM, &crc, 4);
      gi = (struct msm_gem_info){.handle = ph.handle,
                                 .info = MSM_INFO_SET_METADATA,
                                 .value = (uintptr_t)rec,
                                 .len = RECORD_SIZE_B};
      ret = ioctl(node, IOCTL_MSM_GEM_INFO, &gi);
      char json[160];
      snprintf(json, sizeof(json),
               "{\"plane0_offset_B\": %u, \"was\": %u, \"set_metadata\": %d}", offset_B, was,
               ret);
      fprintf(stderr, "vk_gl_layout: case %d hostile %s\n", n, json);
   }
   struct gem_close gc = {.handle = ph.handle};
   ioctl(node, IOCTL_GEM_CLOSE, &gc);
   close(node);
   return ret == 0 ? 0 : -1;
}

/* One case: returns 0 when both sides made their image. With `hostile`, the record is corrupted
 * between export and import (see the top of the file). */
static int run_case(const struct vk *v, const struct gl *g, int n, const struct layout_case *c,
                    int hostile)
{
   char json[512];
   snprintf(json, sizeof(json),
            "{\"name\": \"%s\", \"vk_format\": %d, \"gl_format\": %u, \"width\": %u, "
            "\"height\": %u, \"levels\": %u, \"tiling\": \"%s\", \"usage\": %u, \"flags\": %u}",
            c->name, c->vk_format, c->gl_format, c->width, c->height, c->levels,
            c->tiling == VK_IMAGE_TILING_LINEAR ? "linear" : "optimal", c->usage, c->flags);
   marker(n, "vk-begin", json);
   VkExternalMemoryImageCreateInfo ext = {
      .sType = VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_IMAGE_CREATE_INFO,
      .handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT};
   VkImageCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO,
                            .pNext = &ext,
                            .flags = c->flags,
                            .imageType = VK_IMAGE_TYPE_2D,
                            .format = c->vk_format,
                            .extent = {c->width, c->height, 1},
                            .mipLevels = c->levels,
                            .arrayLayers = 1,
                            .samples = VK_SAMPLE_COUNT_1_BIT,
                            .tiling = c->tiling,
                            .usage = c->usage,
                            .initialLayout = VK_IMAGE_LAYOUT_UNDEFINED};
   VkImage image;
   VkResult r = vkCreateImage(v->dev, &ici, NULL, &image);
   if (r != VK_SUCCESS) {
      snprintf(json, sizeof(json), "{\"error\": \"vkCreateImage: VkResult %d\"}", r);
      marker(n, "vk-end", json);
      return -1;
   }
   VkMemoryRequirements req;
   vkGetImageMemoryRequirements(v->dev, image, &req);
   VkMemoryDedicatedAllocateInfo dedicated = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_DEDICATED_ALLOCATE_INFO, .image = image};
   VkExportMemoryAllocateInfo export = {.sType = VK_STRUCTURE_TYPE_EXPORT_MEMORY_ALLOCATE_INFO,
                                        .pNext = &dedicated,
                                        .handleTypes =
                                           VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT};
   int type = mem_type(v, req.memoryTypeBits);
   VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .pNext = &export,
                               .allocationSize = req.size,
                               .memoryTypeIndex = type < 0 ? 0 : (uint32_t)type};
   VkDeviceMemory memory = VK_NULL_HANDLE;
   int fd = -1;
   r = vkAllocateMemory(v->dev, &mai, NULL, &memory);
   if (r == VK_SUCCESS)
      r = vkBindImageMemory(v->dev, image, memory, 0);
   if (r == VK_SUCCESS) {
      VkMemoryGetFdInfoKHR gfi = {.sType = VK_STRUCTURE_TYPE_MEMORY_GET_FD_INFO_KHR,
                                  .memory = memory,
                                  .handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_OPAQUE_FD_BIT};
      r = v->get_memory_fd(v->dev, &gfi, &fd);
   }
   VkImageSubresource sub = {
      .aspectMask = (c->usage & VK_IMAGE_USAGE_DEPTH_STENCIL_ATTACHMENT_BIT)
                       ? VK_IMAGE_ASPECT_DEPTH_BIT
                       : VK_IMAGE_ASPECT_COLOR_BIT};
   VkSubresourceLayout sl = {0};
   vkGetImageSubresourceLayout(v->dev, image, &sub, &sl);
   snprintf(json, sizeof(json),
            "{\"result\": %d, \"alloc_size_B\": %llu, \"offset_B\": %llu, \"row_pitch_B\": %llu, "
            "\"size_B\": %llu}",
            r, (unsigned long long)req.size, (unsigned long long)sl.offset,
            (unsigned long long)sl.rowPitch, (unsigned long long)sl.size);
   marker(n, "vk-end", json);
   if (r == VK_SUCCESS && hostile && corrupt_record(n, fd, (uint32_t)req.size) != 0) {
      fprintf(stderr, "vk_gl_layout: case %d hostile {\"error\": \"no full record to corrupt\"}\n",
              n);
      r = VK_ERROR_UNKNOWN;
   }

   GLenum err = GL_INVALID_OPERATION;
   if (r == VK_SUCCESS) {
      marker(n, "gl-begin", NULL);
      GLuint mem = 0, tex = 0;
      GLint yes = GL_TRUE;
      g->create_memory_objects(1, &mem);
      g->memory_object_parameteriv(mem, GL_DEDICATED_MEMORY_OBJECT_EXT, &yes);
      /* GL owns the fd from here. */
      g->import_memory_fd(mem, req.size, GL_HANDLE_TYPE_OPAQUE_FD_EXT, fd);
      fd = -1;
      glGenTextures(1, &tex);
      glBindTexture(GL_TEXTURE_2D, tex);
      glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_TILING_EXT,
                      c->tiling == VK_IMAGE_TILING_LINEAR ? GL_LINEAR_TILING_EXT
                                                          : GL_OPTIMAL_TILING_EXT);
      g->tex_storage_mem_2d(GL_TEXTURE_2D, (GLsizei)c->levels, c->gl_format,
                            (GLsizei)c->width, (GLsizei)c->height, mem, 0);
      err = glGetError();
      glDeleteTextures(1, &tex);
      g->delete_memory_objects(1, &mem);
      glFinish();
      snprintf(json, sizeof(json), "{\"gl_error\": %u}", err);
      marker(n, "gl-end", json);
   }
   if (fd >= 0)
      close(fd);
   vkDestroyImage(v->dev, image, NULL);
   if (memory)
      vkFreeMemory(v->dev, memory, NULL);
   return r == VK_SUCCESS && err == GL_NO_ERROR ? 0 : -1;
}

int main(int argc, char **argv)
{
   int hostile = argc > 1 && strcmp(argv[1], "--hostile") == 0;
   struct vk v = {0};
   struct gl g = {0};
   if (vk_init(&v) != 0) {
      fprintf(stderr, "vk_gl_layout: no Vulkan device with VK_KHR_external_memory_fd\n");
      return 1;
   }
   if (gl_init(&g) != 0) {
      fprintf(stderr, "vk_gl_layout: no surfaceless GLES 3 context with "
                      "GL_EXT_memory_object_fd\n");
      vkDestroyDevice(v.dev, NULL);
      vkDestroyInstance(v.instance, NULL);
      return 1;
   }
   int failed = 0;
   if (hostile) {
      /* rgba8-optimal: a UBWC image, plane 0 (pixels) after its UBWC metadata. The import
       * failing is the expected outcome. */
      failed = run_case(&v, &g, 0, &cases[0], 1) != 0;
      printf("{\"cases\": 1, \"failed\": %d}\n", failed);
   } else {
      for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
         failed += run_case(&v, &g, (int)i, &cases[i], 0) != 0;
      printf("{\"cases\": %zu, \"failed\": %d}\n", sizeof(cases) / sizeof(cases[0]), failed);
   }
   eglMakeCurrent(g.dpy, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
   eglDestroyContext(g.dpy, g.ctx);
   eglTerminate(g.dpy);
   vkDestroyDevice(v.dev, NULL);
   vkDestroyInstance(v.instance, NULL);
   return 0;
}
