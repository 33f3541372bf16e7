/* SPDX-License-Identifier: MIT */
/*
 * vk_export_metadata: exports a 256x256 R8G8B8A8 optimal-tiling image's dedicated memory as a
 * dma-buf (vkGetMemoryFdKHR), imports that dma-buf on a new file of the render node and reads the
 * metadata the exporter stored on the buffer (MSM_INFO_GET_METADATA). Prints one JSON object:
 * the device, the record's length and its first 8 bytes (stock turnip stores the 8-byte
 * modifier; turnip on msm-winsys the full record, whose first bytes are its magic).
 *
 * It only calls the Vulkan API and three DRM ioctls; exits non-zero with a message on failure.
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <vulkan/vulkan.h>

/* The two uAPI structs this needs (include/uapi/drm/drm.h, msm_drm.h). */
struct prime_handle {
   uint32_t handle;
   uint32_t flags;
   int32_t fd;
};
struct msm_gem_info {
   uint32_t handle;
   uint32_t info;
   uint64_t value;
   uint32_t len;
   uint32_t pad;
};
#define PRIME_FD_TO_HANDLE _IOWR('d', 0x2e, struct prime_handle)
#define MSM_GEM_INFO _IOWR('d', 0x40 + 0x03, struct msm_gem_info)
#define MSM_INFO_GET_METADATA 7
struct gem_close {
   uint32_t handle;
   uint32_t pad;
};
#define GEM_CLOSE _IOW('d', 0x09, struct gem_close)

#define CHECK(call)                                                                      \
   do {                                                                                  \
      VkResult r_ = (call);                                                              \
      if (r_ != VK_SUCCESS) {                                                            \
         fprintf(stderr, "vk_export_metadata: %s failed: %d\n", #call, r_);             \
         return 1;                                                                       \
      }                                                                                  \
   } while (0)

int
main(void)
{
   VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                            .apiVersion = VK_API_VERSION_1_1};
   VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pApplicationInfo = &app};
   VkInstance inst;
   CHECK(vkCreateInstance(&ici, NULL, &inst));
   uint32_t n = 1;
   VkPhysicalDevice pdev;
   VkResult r = vkEnumeratePhysicalDevices(inst, &n, &pdev);
   if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || n == 0) {
      fprintf(stderr, "vk_export_metadata: no device\n");
      return 1;
   }
   VkPhysicalDeviceProperties props;
   vkGetPhysicalDeviceProperties(pdev, &props);

   float prio = 1.0f;
   VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio};
   const char *exts[] = {"VK_KHR_external_memory_fd", "VK_EXT_external_memory_dma_buf"};
   VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qci,
                             .enabledExtensionCount = 2,
                             .ppEnabledExtensionNames = exts};
   VkDevice dev;
   CHECK(vkCreateDevice(pdev, &dci, NULL, &dev));

   VkExternalMemoryImageCreateInfo emi = {
      .sType = VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_IMAGE_CREATE_INFO,
      .handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT};
   VkImageCreateInfo ii = {.sType = VK_STRUCTURE_TYPE_IMAGE_CREATE_INFO,
                           .pNext = &emi,
                           .imageType = VK_IMAGE_TYPE_2D,
                           .format = VK_FORMAT_R8G8B8A8_UNORM,
                           .extent = {256, 256, 1},
                           .mipLevels = 1,
                           .arrayLayers = 1,
                           .samples = VK_SAMPLE_COUNT_1_BIT,
                           .tiling = VK_IMAGE_TILING_OPTIMAL,
                           .usage = VK_IMAGE_USAGE_SAMPLED_BIT |
                                    VK_IMAGE_USAGE_COLOR_ATTACHMENT_BIT};
   VkImage img;
   CHECK(vkCreateImage(dev, &ii, NULL, &img));
   VkMemoryRequirements req;
   vkGetImageMemoryRequirements(dev, img, &req);
   VkMemoryDedicatedAllocateInfo ded = {.sType = VK_STRUCTURE_TYPE_MEMORY_DEDICATED_ALLOCATE_INFO,
                                        .image = img};
   VkExportMemoryAllocateInfo exp = {.sType = VK_STRUCTURE_TYPE_EXPORT_MEMORY_ALLOCATE_INFO,
                                     .pNext = &ded,
                                     .handleTypes =
                                        VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT};
   VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .pNext = &exp,
                               .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)__builtin_ctz(req.memoryTypeBits)};
   VkDeviceMemory mem;
   CHECK(vkAllocateMemory(dev, &mai, NULL, &mem));
   CHECK(vkBindImageMemory(dev, img, mem, 0));
   PFN_vkGetMemoryFdKHR get_fd =
      (PFN_vkGetMemoryFdKHR)vkGetDeviceProcAddr(dev, "vkGetMemoryFdKHR");
   VkMemoryGetFdInfoKHR gfi = {.sType = VK_STRUCTURE_TYPE_MEMORY_GET_FD_INFO_KHR,
                               .memory = mem,
                               .handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT};
   int fd = -1;
   CHECK(get_fd(dev, &gfi, &fd));

   int status = 0;
   uint8_t md[256] = {0};
   int node = open("/dev/dri/renderD128", O_RDWR | O_CLOEXEC);
   struct prime_handle ph = {.fd = fd};
   struct msm_gem_info gi = {.info = MSM_INFO_GET_METADATA,
                             .value = (uint64_t)(uintptr_t)md,
                             .len = sizeof(md)};
   if (node < 0 || ioctl(node, PRIME_FD_TO_HANDLE, &ph) ||
       (gi.handle = ph.handle, ioctl(node, MSM_GEM_INFO, &gi))) {
      perror("vk_export_metadata: reading the metadata");
      status = 1;
   } else {
      printf("{\"device\": \"%s\", \"metadata_len\": %u, \"first_bytes\": \"", props.deviceName,
             gi.len);
      for (int i = 0; i < 8; i++)
         printf("%02x", md[i]);
      printf("\"}\n");
   }
   if (ph.handle) {
      struct gem_close gc = {.handle = ph.handle};
      ioctl(node, GEM_CLOSE, &gc);
   }
   if (node >= 0)
      close(node);
   close(fd);
   vkFreeMemory(dev, mem, NULL);
   vkDestroyImage(dev, img, NULL);
   vkDestroyDevice(dev, NULL);
   vkDestroyInstance(inst, NULL);
   return status;
}
