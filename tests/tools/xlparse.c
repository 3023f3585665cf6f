/*
 * xlparse: print how Xen's own config parser (libxlutil, Xen 4.17) reads a domain
 * config file. Runs without a hypervisor: libxlutil's config and disk-spec parsers
 * never open a libxl context. Used by tests/render to prove that the xl configs xenha
 * renders are read by xl the way xenha means them.
 *
 * Output, one line each: name=..., memory=..., vcpus=..., kernel=..., type=...,
 * disk[N] pdev_path=... vdev=... format=... script=... readwrite=N, vif[N]=...
 * Exit 1 when the file does not parse (libxlutil prints the error on stderr),
 * 2 when a disk spec does not parse.
 */
#include <stdio.h>
#include <string.h>
#include <libxl.h>
#include <libxl_utils.h>
#include <libxlutil.h>

static void print_string(XLU_Config *cfg, const char *key)
{
    const char *value;
    if (!xlu_cfg_get_string(cfg, key, &value, 1))
        printf("%s=%s\n", key, value);
}

static void print_long(XLU_Config *cfg, const char *key)
{
    long value;
    if (!xlu_cfg_get_long(cfg, key, &value, 1))
        printf("%s=%ld\n", key, value);
}

int main(int argc, char **argv)
{
    XLU_Config *cfg;
    XLU_ConfigList *list;
    int entries, i, rc;
    static const char *strings[] = {"name", "type", "kernel", "bootloader", "extra",
                                    "on_poweroff", "on_reboot", "on_crash", NULL};
    const char **key;

    if (argc != 2) {
        fprintf(stderr, "usage: xlparse CONFIG\n");
        return 64;
    }
    cfg = xlu_cfg_init(stderr, argv[1]);
    if (!cfg || xlu_cfg_readfile(cfg, argv[1])) {
        fprintf(stderr, "Failed to parse config\n");
        return 1;
    }
    for (key = strings; *key; key++)
        print_string(cfg, *key);
    print_long(cfg, "memory");
    print_long(cfg, "vcpus");
    if (!xlu_cfg_get_list(cfg, "disk", &list, &entries, 1)) {
        for (i = 0; i < entries; i++) {
            const char *spec = xlu_cfg_get_listitem(list, i);
            libxl_device_disk disk;
            libxl_device_disk_init(&disk);
            rc = xlu_disk_parse(cfg, 1, &spec, &disk);
            if (rc) {
                printf("disk[%d] PARSE-ERROR rc=%d\n", i, rc);
                return 2;
            }
            printf("disk[%d] pdev_path=%s vdev=%s format=%s script=%s readwrite=%d\n", i,
                   disk.pdev_path ? disk.pdev_path : "", disk.vdev ? disk.vdev : "",
                   libxl_disk_format_to_string(disk.format), disk.script ? disk.script : "",
                   disk.readwrite);
            libxl_device_disk_dispose(&disk);
        }
    }
    if (!xlu_cfg_get_list(cfg, "vif", &list, &entries, 1))
        for (i = 0; i < entries; i++)
            printf("vif[%d]=%s\n", i, xlu_cfg_get_listitem(list, i));
    xlu_cfg_destroy(cfg);
    return 0;
}
