/* tmp */ typedef int x_storage_tmp;
