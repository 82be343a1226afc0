/*
 * A stand-in for libnvidia-ml.so.1 with the C ABI of nvml.h, for testing the agent's purego
 * binding on machines without an NVIDIA GPU. Two devices: GPU 0 (Volta and newer) has an
 * energy counter that advances by exactly 350 J per nvmlDeviceGetTotalEnergyConsumption call;
 * GPU 1 (older) has no energy counter and reports 72.5 W. Built by the test with
 * `gcc -shared -fPIC`.
 */
#include <string.h>

typedef int nvmlReturn_t;
typedef struct { int index; } *nvmlDevice_t;

enum { NVML_SUCCESS = 0, NVML_ERROR_INVALID_ARGUMENT = 2, NVML_ERROR_NOT_SUPPORTED = 3,
       NVML_ERROR_UNINITIALIZED = 1 };

static struct { int index; } devices[2] = {{0}, {1}};
static int initialised;
static unsigned long long energy_mj = 1000000; /* 1 kJ after driver load */

nvmlReturn_t nvmlInit_v2(void) { initialised = 1; return NVML_SUCCESS; }
nvmlReturn_t nvmlShutdown(void) { initialised = 0; return NVML_SUCCESS; }

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
	if (!initialised) return NVML_ERROR_UNINITIALIZED;
	*count = 2;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
	if (index > 1) return NVML_ERROR_INVALID_ARGUMENT;
	*device = (nvmlDevice_t)&devices[index];
	return NVML_SUCCESS;
}

static nvmlReturn_t copy(const char *s, char *buf, unsigned int length) {
	if (strlen(s) + 1 > length) return NVML_ERROR_INVALID_ARGUMENT;
	strcpy(buf, s);
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length) {
	return copy(d->index == 0 ? "NVIDIA H100 80GB HBM3" : "Tesla P4", name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int length) {
	return copy(d->index == 0 ? "GPU-5b0c7e2a-0000-4000-8000-000000000000"
	                          : "GPU-9d1f3a77-0000-4000-8000-000000000001", uuid, length);
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *mj) {
	if (d->index != 0) return NVML_ERROR_NOT_SUPPORTED;
	energy_mj += 350000; /* 350 J per call */
	*mj = energy_mj;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw) {
	*mw = d->index == 0 ? 350000 : 72500;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *mw) {
	*mw = d->index == 0 ? 700000 : 75000;
	return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t r) {
	switch (r) {
	case NVML_SUCCESS: return "Success";
	case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
	case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
	default: return "Invalid Argument";
	}
}
