#include <dnnl.h>
/* oneDNN as packaged by Debian runs on OpenMP (libgomp): threads are set there. */
void omp_set_num_threads(int num_threads);
int omp_get_max_threads(void);
