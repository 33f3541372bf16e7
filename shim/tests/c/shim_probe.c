/* A program that knows nothing of the shim: it uses /dev/dri/renderD128 as it would on a phone.
 * Run under LD_PRELOAD=libmsmws_shim.so by shim/tests/preload.rs, with one argument:
 *   clean      every check below, everything released: the report must be clean
 *   unknown    also an ioctl the model has no handler for (reported unanswered)
 *   leak       closes the device fd while it still holds a GEM handle (a leak)
 *   exit-open  leaves a device fd with a GEM handle open at exit (closed by the shim, no leak)
 *   flip       legacy KMS on card0 through libdrm: a dumb buffer on the CRTC, a page flip with an
 *              event, which poll and drmHandleEvent (read) deliver
 *   share      a buffer shared between two render files with an 8-byte layout metadata record
 *              (what stock turnip exports and stock freedreno reads)
 * Exits 0 when every check passed; prints the first failure otherwise. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <poll.h>
#include <unistd.h>

#include <drm.h>
#include <xf86drm.h>
#include <xf86drmMode.h>

/* The msm uAPI as today's kernel has it (include/uapi/drm/msm_drm.h); the machine's libdrm copy
 * may be older, so the few structs used here are spelled out. */
struct drm_msm_param {
   uint32_t pipe;
   uint32_t param;
   uint64_t value;
   uint32_t len;
   uint32_t pad;
};
struct drm_msm_gem_new {
   uint64_t size;
   uint32_t flags;
   uint32_t handle;
};
struct drm_msm_gem_info {
   uint32_t handle;
   uint32_t info;
   uint64_t value;
   uint32_t len;
   uint32_t pad;
};
#define MSM_PIPE_3D0 0x10
#define MSM_PARAM_CHIP_ID 0x03
#define MSM_BO_WC 0x00020000
#define MSM_INFO_GET_OFFSET 0x00
#define MSM_INFO_SET_METADATA 0x06
#define MSM_INFO_GET_METADATA 0x07
#define DRM_IOCTL_MSM_GET_PARAM DRM_IOWR(DRM_COMMAND_BASE + 0x00, struct drm_msm_param)
#define DRM_IOCTL_MSM_GEM_NEW DRM_IOWR(DRM_COMMAND_BASE + 0x02, struct drm_msm_gem_new)
#define DRM_IOCTL_MSM_GEM_INFO DRM_IOWR(DRM_COMMAND_BASE + 0x03, struct drm_msm_gem_info)
/* What libdrm's drmCommandWrite(fd, DRM_MSM_GEM_INFO, ...) asks (turnip's and freedreno's
 * metadata calls): the same number with _IOW. */
#define DRM_IOCTL_MSM_GEM_INFO_W DRM_IOW(DRM_COMMAND_BASE + 0x03, struct drm_msm_gem_info)

#define CHECK(cond)                                                                  \
   do {                                                                              \
      if (!(cond)) {                                                                 \
         fprintf(stderr, "shim_probe: %s:%d: %s failed (errno %d: %s)\n", __FILE__, \
                 __LINE__, #cond, errno, strerror(errno));                           \
         exit(1);                                                                    \
      }                                                                              \
   } while (0)

static void check_node(const struct stat *st, unsigned minor)
{
   CHECK(S_ISCHR(st->st_mode));
   CHECK(major(st->st_rdev) == 226);
   CHECK(minor(st->st_rdev) == minor);
}

static uint32_t gem_new(int fd, uint64_t size)
{
   struct drm_msm_gem_new req = {.size = size, .flags = MSM_BO_WC};
   CHECK(ioctl(fd, DRM_IOCTL_MSM_GEM_NEW, &req) == 0);
   CHECK(req.handle != 0);
   return req.handle;
}

static void gem_close(int fd, uint32_t handle)
{
   struct drm_gem_close req = {.handle = handle};
   CHECK(ioctl(fd, DRM_IOCTL_GEM_CLOSE, &req) == 0);
}

static int open_render(void)
{
   int fd = open("/dev/dri/renderD128", O_RDWR | O_CLOEXEC);
   CHECK(fd >= 0);
   return fd;
}

static int flips;

static void on_flip(int fd, unsigned seq, unsigned sec, unsigned usec, void *data)
{
   (void)fd, (void)seq, (void)sec, (void)usec;
   CHECK(data == &flips);
   flips++;
}

/* What kmscube or modetest do first, with the legacy API: set a mode on the first connector's
 * CRTC with a dumb buffer, flip to it once with an event, take the event, and tear down. */
static int flip(void)
{
   int card = open("/dev/dri/card0", O_RDWR | O_CLOEXEC | O_NONBLOCK);
   CHECK(card >= 0);
   CHECK((fcntl(card, F_GETFL) & O_NONBLOCK) != 0);
   char buf[64];
   CHECK(read(card, buf, sizeof(buf)) == -1 && errno == EAGAIN);
   struct pollfd pfd = {.fd = card, .events = POLLIN};
   CHECK(poll(&pfd, 1, 0) == 0);

   drmModeRes *res = drmModeGetResources(card);
   CHECK(res && res->count_crtcs > 0 && res->count_connectors > 0);
   drmModeConnector *conn = drmModeGetConnector(card, res->connectors[0]);
   CHECK(conn && conn->count_modes > 0);
   drmModeModeInfo mode = conn->modes[0];
   struct drm_mode_create_dumb dumb = {.width = mode.hdisplay, .height = mode.vdisplay, .bpp = 32};
   CHECK(drmIoctl(card, DRM_IOCTL_MODE_CREATE_DUMB, &dumb) == 0);
   uint32_t fb;
   CHECK(drmModeAddFB(card, mode.hdisplay, mode.vdisplay, 24, 32, dumb.pitch, dumb.handle, &fb) == 0);
   uint32_t crtc = res->crtcs[0];
   CHECK(drmModeSetCrtc(card, crtc, fb, 0, 0, &conn->connector_id, 1, &mode) == 0);

   CHECK(drmModePageFlip(card, crtc, fb, DRM_MODE_PAGE_FLIP_EVENT, &flips) == 0);
   CHECK(poll(&pfd, 1, 5000) == 1 && (pfd.revents & POLLIN));
   drmEventContext ev = {.version = 2, .page_flip_handler = on_flip};
   CHECK(drmHandleEvent(card, &ev) == 0);
   CHECK(flips == 1);
   CHECK(poll(&pfd, 1, 0) == 0);

   CHECK(drmModeSetCrtc(card, crtc, 0, 0, 0, NULL, 0, NULL) == 0);
   CHECK(drmModeRmFB(card, fb) == 0);
   struct drm_mode_destroy_dumb destroy = {.handle = dumb.handle};
   CHECK(drmIoctl(card, DRM_IOCTL_MODE_DESTROY_DUMB, &destroy) == 0);
   drmModeFreeConnector(conn);
   drmModeFreeResources(res);
   CHECK(close(card) == 0);
   return 0;
}

/* An exporter's file stores the modifier-only record (DRM_FORMAT_MOD_QCOM_TILED3) and exports the
 * buffer; an importer's file imports it, asks the record's length, then reads it. */
static int share(void)
{
   int exporter = open_render(), importer = open_render();
   uint32_t bo = gem_new(exporter, 8192);
   uint64_t modifier = 0x0500000000000003ull;
   struct drm_msm_gem_info set = {.handle = bo, .info = MSM_INFO_SET_METADATA,
                                  .value = (uintptr_t)&modifier, .len = sizeof(modifier)};
   CHECK(ioctl(exporter, DRM_IOCTL_MSM_GEM_INFO_W, &set) == 0);
   struct drm_prime_handle prime = {.handle = bo, .flags = DRM_CLOEXEC | DRM_RDWR};
   CHECK(ioctl(exporter, DRM_IOCTL_PRIME_HANDLE_TO_FD, &prime) == 0);
   struct drm_prime_handle imp = {.fd = prime.fd};
   CHECK(ioctl(importer, DRM_IOCTL_PRIME_FD_TO_HANDLE, &imp) == 0);
   struct drm_msm_gem_info get = {.handle = imp.handle, .info = MSM_INFO_GET_METADATA};
   CHECK(ioctl(importer, DRM_IOCTL_MSM_GEM_INFO, &get) == 0 && get.len == 8);
   uint64_t read_back = 0;
   get.value = (uintptr_t)&read_back;
   CHECK(ioctl(importer, DRM_IOCTL_MSM_GEM_INFO, &get) == 0 && read_back == modifier);
   CHECK(close(prime.fd) == 0);
   gem_close(importer, imp.handle);
   gem_close(exporter, bo);
   CHECK(close(importer) == 0 && close(exporter) == 0);
   return 0;
}

int main(int argc, char **argv)
{
   const char *mode = argc > 1 ? argv[1] : "clean";
   if (strcmp(mode, "flip") == 0)
      return flip();
   if (strcmp(mode, "share") == 0)
      return share();
   struct stat st;

   CHECK(stat("/dev/dri/renderD128", &st) == 0);
   check_node(&st, 128);
   CHECK(stat("/dev/dri/card0", &st) == 0);
   check_node(&st, 0);
   CHECK(access("/dev/dri/renderD128", R_OK | W_OK) == 0);
   CHECK(stat("/dev/dri/renderD129", &st) == -1 && errno == ENOENT);

   /* What libdrm reads to enumerate the device (xf86drm.c: drmParseSubsystemType,
    * drmParseOFBusInfo, drmGetMinorNameForFD), through stdio, readlink, realpath and opendir. */
   struct statx stx;
   CHECK(statx(AT_FDCWD, "/dev/dri/renderD128", 0, STATX_BASIC_STATS, &stx) == 0);
   CHECK(S_ISCHR(stx.stx_mode) && stx.stx_rdev_major == 226 && stx.stx_rdev_minor == 128);
   char link[PATH_MAX] = {0};
   CHECK(readlink("/sys/dev/char/226:128/device/subsystem", link, sizeof(link) - 1) > 0);
   CHECK(strcmp(strrchr(link, '/'), "/platform") == 0);
   char real[PATH_MAX];
   CHECK(realpath("/sys/dev/char/226:128/device", real) != NULL);
   CHECK(strcmp(real, "/sys/devices/platform/soc@0/3d00000.gpu") == 0);
   char *canon = realpath("/dev/dri/../dri/card0", NULL);
   CHECK(canon != NULL && strcmp(canon, "/dev/dri/card0") == 0);
   free(canon);
   FILE *uevent = fopen("/sys/dev/char/226:128/device/uevent", "r");
   CHECK(uevent != NULL);
   char line[256];
   int of_fullname = 0;
   while (fgets(line, sizeof(line), uevent))
      of_fullname |= strcmp(line, "OF_FULLNAME=/soc@0/gpu@3d00000\n") == 0;
   fclose(uevent);
   CHECK(of_fullname);
   DIR *dir = opendir("/dev/dri");
   CHECK(dir != NULL);
   int nodes = 0;
   for (struct dirent *e; (e = readdir(dir));)
      nodes += strcmp(e->d_name, "card0") == 0 || strcmp(e->d_name, "renderD128") == 0;
   closedir(dir);
   CHECK(nodes == 2);
   dir = opendir("/sys/dev/char/226:0/device/drm");
   CHECK(dir != NULL);
   closedir(dir);

   int fd = open_render();
   CHECK(fstat(fd, &st) == 0);
   check_node(&st, 128);
   CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);

   char name[32] = {0};
   struct drm_version version = {.name = name, .name_len = sizeof(name) - 1};
   CHECK(ioctl(fd, DRM_IOCTL_VERSION, &version) == 0);
   CHECK(strcmp(name, "msm") == 0);
   CHECK(version.version_major == 1);

   struct drm_msm_param param = {.pipe = MSM_PIPE_3D0, .param = MSM_PARAM_CHIP_ID};
   CHECK(ioctl(fd, DRM_IOCTL_MSM_GET_PARAM, &param) == 0);
   CHECK((uint32_t)param.value == 0x43051401);
   param.param = 0xffff;
   CHECK(ioctl(fd, DRM_IOCTL_MSM_GET_PARAM, &param) == -1 && errno == EINVAL);

   /* A buffer through its fake offset: written through one map, read back through another. */
   uint32_t bo = gem_new(fd, 8192);
   struct drm_msm_gem_info info = {.handle = bo, .info = MSM_INFO_GET_OFFSET};
   CHECK(ioctl(fd, DRM_IOCTL_MSM_GEM_INFO, &info) == 0);
   uint32_t *map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, info.value);
   CHECK(map != MAP_FAILED);
   for (int i = 0; i < 2048; i++)
      map[i] = 0x5eed0000u + i;
   CHECK(munmap(map, 8192) == 0);
   map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, info.value);
   CHECK(map != MAP_FAILED);
   CHECK(map[0] == 0x5eed0000u && map[1023] == 0x5eed0000u + 1023);
   CHECK(munmap(map, 4096) == 0);
   CHECK(mmap(NULL, 16384, PROT_READ, MAP_SHARED, fd, info.value) == MAP_FAILED && errno == EINVAL);
   CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, info.value + 4096) == MAP_FAILED &&
         errno == EINVAL);

   /* PRIME export: a real fd of the same memory. */
   struct drm_prime_handle prime = {.handle = bo, .flags = DRM_CLOEXEC | DRM_RDWR};
   CHECK(ioctl(fd, DRM_IOCTL_PRIME_HANDLE_TO_FD, &prime) == 0);
   CHECK(prime.fd >= 0);
   CHECK(fstat(prime.fd, &st) == 0 && !S_ISCHR(st.st_mode));
   map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, prime.fd, 0);
   CHECK(map != MAP_FAILED && map[5] == 0x5eed0005u);
   CHECK(munmap(map, 4096) == 0);
   if (strcmp(mode, "unknown") == 0) {
      /* DMA_BUF_IOCTL_EXPORT_SYNC_FILE: the model answers on its dma-buf (a memfd); the buffer
       * is idle, so the sync file carries a signalled stub. */
      struct {
         uint32_t flags;
         int32_t fd;
      } export_sync = {.flags = 1};
      CHECK(ioctl(prime.fd, _IOWR('b', 2, export_sync), &export_sync) == 0);
      struct {
         char name[32];
         int32_t status;
         uint32_t flags, num_fences, pad;
         uint64_t sync_fence_info;
      } info = {0};
      CHECK(ioctl(export_sync.fd, _IOWR('>', 4, info), &info) == 0);
      CHECK(info.num_fences == 1 && info.status == 1);
      info.flags = 1;
      CHECK(ioctl(export_sync.fd, _IOWR('>', 4, info), &info) == -1 && errno == EINVAL);
      CHECK(close(export_sync.fd) == 0);
      /* DMA_BUF_SET_NAME: the kernel has it, the model does not. */
      CHECK(ioctl(prime.fd, _IOW('b', 1, uint64_t), "name") == -1 && errno == ENOTTY);
      /* TCGETS on a pipe: ENOTTY too, but nothing of the model's. */
      CHECK(!isatty(1) && errno == ENOTTY);
   }
   CHECK(close(prime.fd) == 0);

   /* dup, F_DUPFD_CLOEXEC and close: the file lives while any of its fds does. */
   int d = dup(fd);
   CHECK(d >= 0 && d != fd);
   CHECK(close(fd) == 0);
   CHECK(ioctl(fd, DRM_IOCTL_VERSION, &version) == -1 && errno == EBADF);
   CHECK(ioctl(d, DRM_IOCTL_VERSION, &version) == 0);
   int e = fcntl(d, F_DUPFD_CLOEXEC, 100);
   CHECK(e >= 100);
   CHECK(close(d) == 0);
   CHECK(fstat(e, &st) == 0);
   check_node(&st, 128);
   CHECK(lseek(e, 4096, SEEK_SET) == 0);
   CHECK(write(e, "x", 1) == -1 && errno == EINVAL);
   CHECK(dup2(e, 90) == 90);
   CHECK(close(e) == 0);
   fd = 90;
   CHECK(ioctl(fd, DRM_IOCTL_VERSION, &version) == 0);

   if (strcmp(mode, "unknown") == 0) {
      /* The reserved GEM_SVM_NEW slot: no handler in the kernel's table nor the model's. */
      uint64_t x = 0;
      CHECK(ioctl(fd, DRM_IOWR(DRM_COMMAND_BASE + 0x09, uint64_t), &x) == -1 && errno == EINVAL);
   }

   if (strcmp(mode, "leak") == 0) {
      CHECK(close(fd) == 0);
      return 0;
   }
   gem_close(fd, bo);

   int ro = open("/dev/dri/renderD128", O_RDONLY);
   CHECK(ro >= 0 && write(ro, "x", 1) == -1 && errno == EBADF);
   CHECK(close(ro) == 0);

   int card = open("/dev/dri/card0", O_RDWR);
   CHECK(card >= 0);
   CHECK((fcntl(card, F_GETFD) & FD_CLOEXEC) == 0);
   CHECK(ioctl(card, DRM_IOCTL_VERSION, &version) == 0 && strcmp(name, "msm") == 0);
   CHECK(close(card) == 0);

   if (strcmp(mode, "exit-open") == 0) {
      gem_new(fd, 4096);
      return 0;
   }
   CHECK(close(fd) == 0);
   return 0;
}
