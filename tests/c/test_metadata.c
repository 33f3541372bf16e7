/* SPDX-License-Identifier: MIT */
/*
 * C test of the layout metadata (msmws_metadata_*): an exporter plans and encodes a UBWC image,
 * an importer decodes it, today's freedreno reads the modifier, and hostile or foreign records
 * get their own errno. Returns 0 when every check held; prints each failed check.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "msm_winsys.h"

#include "check.h"

#define VK_FORMAT_R8G8B8A8_UNORM 37
#define VK_IMAGE_USAGE_TRANSFER_SRC_BIT 0x1
#define VK_IMAGE_USAGE_TRANSFER_DST_BIT 0x2
#define VK_IMAGE_USAGE_SAMPLED_BIT 0x4
#define VK_IMAGE_CREATE_SPARSE_BINDING_BIT 0x1
#define DRM_FORMAT_MOD_LINEAR 0ull
#define DRM_FORMAT_MOD_QCOM_COMPRESSED ((5ull << 56) | 1)

static void
put_u32(uint8_t *b, unsigned off, uint32_t v)
{
   memcpy(b + off, &v, sizeof(v)); /* little-endian host, as every Adreno host */
}

int
main(void)
{
   const struct msmws_metadata_identity us = { .chip_id = 0x43050a01, .driver_id = 42 };
   const struct msmws_metadata_identity other_gpu = { .chip_id = 0x06060001, .driver_id = 42 };
   struct msmws_image_desc desc = {
      .vk_format = VK_FORMAT_R8G8B8A8_UNORM,
      .drm_fourcc = 0x34324241, /* DRM_FORMAT_ABGR8888 */
      .width = 1920,
      .height = 1080,
      .depth = 1,
      .mip_levels = 1,
      .array_layers = 2,
      .samples = 1,
      .create_flags = 0,
      .usage = VK_IMAGE_USAGE_SAMPLED_BIT,
   };
   struct msmws_image_layout layout, got;
   struct msmws_image_desc got_desc;
   struct msmws_level_layout level;
   uint8_t rec[MSMWS_METADATA_MAX_SIZE], bad[MSMWS_METADATA_MAX_SIZE];
   uint32_t len = 0, flags = 99;
   uint64_t modifier = 0;

   /* Exporter. */
   CHECK(msmws_metadata_plan(&desc, DRM_FORMAT_MOD_QCOM_COMPRESSED, &layout) == 0);
   CHECK(layout.ubwc == 1 && layout.tile_mode == 3 && layout.plane_count == 1);
   CHECK(layout.planes[0].offset_B > 0 && layout.planes[0].pitch_B >= 1920 * 4);
   CHECK(msmws_metadata_encode(&us, &desc, &layout, rec, sizeof(rec), &len) == 0);
   CHECK(len == 124);
   CHECK(msmws_metadata_encode(&us, &desc, &layout, rec, 16, &len) == -EINVAL);

   /* A driver passes its whole VkImageCreateInfo: transfer usage changes no layout and is
    * dropped (turnip's images all have it); sparse cannot be described. */
   {
      struct msmws_image_desc driver = desc, sparse = desc;
      uint8_t rec2[MSMWS_METADATA_MAX_SIZE];
      uint32_t len2 = 0;
      driver.usage |= VK_IMAGE_USAGE_TRANSFER_SRC_BIT | VK_IMAGE_USAGE_TRANSFER_DST_BIT;
      CHECK(msmws_metadata_encode(&us, &driver, &layout, rec2, sizeof(rec2), &len2) == 0);
      CHECK(len2 == len && memcmp(rec2, rec, len) == 0);
      sparse.create_flags = VK_IMAGE_CREATE_SPARSE_BINDING_BIT;
      CHECK(msmws_metadata_encode(&us, &sparse, &layout, rec2, sizeof(rec2), &len2) ==
            -EOPNOTSUPP);
   }

   /* Today's freedreno reads only the first 8 bytes. */
   CHECK(msmws_metadata_freedreno_modifier(rec, len, &modifier) == 0);
   CHECK(modifier == DRM_FORMAT_MOD_QCOM_COMPRESSED);
   CHECK(msmws_metadata_freedreno_modifier(rec, 4, &modifier) == -ENODATA);

   /* Importer. */
   memset(&got, 0, sizeof(got));
   CHECK(msmws_metadata_decode(rec, len, &us, layout.size_B, &got_desc, &got, &flags) == 0);
   CHECK(flags == 0);
   CHECK(got.size_B == layout.size_B && got.modifier == layout.modifier);
   CHECK(got.planes[0].offset_B == layout.planes[0].offset_B);
   CHECK(got.planes[0].pitch_B == layout.planes[0].pitch_B);
   CHECK(got.planes[0].layer_stride_B == layout.planes[0].layer_stride_B);
   CHECK(got_desc.width == 1920 && got_desc.array_layers == 2);
   CHECK(msmws_metadata_level(&got_desc, &got, layout.size_B, 0, 0, &level) == 0);
   CHECK(level.offset_B == got.planes[0].offset_B && level.ubwc_size_B > 0);
   CHECK(msmws_metadata_validate(&got_desc, &got, layout.size_B) == 0);

   /* Legacy 8-byte form: accepted, flagged. */
   CHECK(msmws_metadata_decode(rec, 8, &us, layout.size_B, &got_desc, &got, &flags) == 0);
   CHECK(flags == MSMWS_METADATA_LEGACY && got.modifier == DRM_FORMAT_MOD_QCOM_COMPRESSED);

   /* One errno per rule; failures write nothing. */
   flags = 99;
   CHECK(msmws_metadata_decode(NULL, 0, &us, layout.size_B, &got_desc, &got, &flags) == -ENODATA);
   CHECK(flags == 99);
   CHECK(msmws_metadata_decode(rec, 129, &us, layout.size_B, &got_desc, &got, &flags) == -E2BIG);
   CHECK(msmws_metadata_decode(rec, 60, &us, layout.size_B, &got_desc, &got, &flags) == -EMSGSIZE);
   CHECK(msmws_metadata_decode(rec, len, &other_gpu, layout.size_B, &got_desc, &got, &flags) ==
         -EXDEV);
   CHECK(msmws_metadata_decode(rec, len, &us, layout.size_B - 1, &got_desc, &got, &flags) ==
         -ERANGE);
   memcpy(bad, rec, len);
   bad[44] ^= 1; /* width, checksum not updated */
   CHECK(msmws_metadata_decode(bad, len, &us, layout.size_B, &got_desc, &got, &flags) == -EBADMSG);
   memcpy(bad, rec, len);
   put_u32(bad, 8, 0x58585858); /* no magic */
   CHECK(msmws_metadata_decode(bad, len, &us, layout.size_B, &got_desc, &got, &flags) == -ENOMSG);
   CHECK(flags == 99);

   /* Bad input. */
   CHECK(msmws_metadata_decode(NULL, 8, &us, 4096, &got_desc, &got, &flags) == -EINVAL);
   CHECK(msmws_metadata_decode(rec, len, NULL, 4096, &got_desc, &got, &flags) == -EINVAL);
   CHECK(msmws_metadata_decode(rec, len, &us, 4096, &got_desc, &got, NULL) == -EINVAL);
   CHECK(msmws_metadata_plan(NULL, DRM_FORMAT_MOD_LINEAR, &layout) == -EINVAL);
   CHECK(msmws_metadata_plan(&desc, 0x1234, &layout) == -EINVAL);

   /* A layout handed over some other way: 64-bit overflow is an error, not a wrap. */
   got = layout;
   got.planes[0].offset_B = UINT64_MAX - 100;
   CHECK(msmws_metadata_validate(&desc, &got, UINT64_MAX) == -EOVERFLOW);
   got = layout;
   got.planes[0].pitch_B = 64;
   CHECK(msmws_metadata_validate(&desc, &got, layout.size_B) == -EDOM);

   return check_report("test_metadata");
}
