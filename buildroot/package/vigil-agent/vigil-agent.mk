################################################################################
#
# vigil-agent
#
################################################################################

# The project builds the agent itself ("make agent-bin": a Node.js single
# executable and better-sqlite3's native addon); this package only installs it.
VIGIL_AGENT_VERSION = local
VIGIL_AGENT_SITE = $(call qstrip,$(BR2_PACKAGE_VIGIL_AGENT_BINARY_DIR))
VIGIL_AGENT_SITE_METHOD = local
VIGIL_AGENT_LICENSE = Apache-2.0

ifeq ($(BR2_aarch64),y)
VIGIL_AGENT_ARCH = arm64
else
VIGIL_AGENT_ARCH = x64
endif

# The executable carries its JavaScript in an ELF note: the defconfig keeps
# Buildroot's strip away from it (BR2_STRIP_EXCLUDE_FILES).
define VIGIL_AGENT_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(@D)/linux-$(VIGIL_AGENT_ARCH)/vigil-agent \
		$(TARGET_DIR)/usr/bin/vigil-agent
	$(INSTALL) -D -m 0644 $(@D)/linux-$(VIGIL_AGENT_ARCH)/better_sqlite3.node \
		$(TARGET_DIR)/usr/lib/vigil-agent/better_sqlite3.node
	$(INSTALL) -D -m 0755 $(VIGIL_AGENT_PKGDIR)/vigil-agent-run \
		$(TARGET_DIR)/usr/libexec/vigil-agent-run
	$(INSTALL) -D -m 0644 $(VIGIL_AGENT_PKGDIR)/vigil-agent.default \
		$(TARGET_DIR)/etc/default/vigil-agent
endef

# init starts and restarts the agent (the rootfs overlay's /etc/inittab);
# this script only stops it at shutdown, before /data is unmounted.
define VIGIL_AGENT_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(VIGIL_AGENT_PKGDIR)/S99vigil-agent \
		$(TARGET_DIR)/etc/init.d/S99vigil-agent
endef

$(eval $(generic-package))
