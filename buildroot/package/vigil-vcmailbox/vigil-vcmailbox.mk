################################################################################
#
# vigil-vcmailbox
#
################################################################################

# One C file in this tree: the firmware mailbox call vigil-reboot needs
VIGIL_VCMAILBOX_VERSION = local
VIGIL_VCMAILBOX_SITE = $(VIGIL_VCMAILBOX_PKGDIR)/src
VIGIL_VCMAILBOX_SITE_METHOD = local
VIGIL_VCMAILBOX_LICENSE = Apache-2.0

define VIGIL_VCMAILBOX_BUILD_CMDS
	$(TARGET_CC) $(TARGET_CFLAGS) $(TARGET_LDFLAGS) -Wall -Wextra \
		-o $(@D)/vcmailbox $(@D)/vcmailbox.c
endef

define VIGIL_VCMAILBOX_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(@D)/vcmailbox $(TARGET_DIR)/usr/bin/vcmailbox
endef

$(eval $(generic-package))
