include $(sort $(wildcard $(BR2_EXTERNAL_VIGIL_PATH)/package/*/*.mk))
